"""The two GraphQL WebSocket protocols, each message's shape checked before strawberry reads it.

strawberry's handlers index a message as the protocols describe it: a message that is not
an object (`5`, `[]`), or a `start`/`subscribe` whose payload, query, variables,
operationName or id has another type, raised inside them, and the connection ended with
a traceback at ERROR, whether a token was given or not. Here such a message is refused
as each protocol says: graphql-transport-ws closes the connection with 4400 and a reason;
graphql-ws (subscriptions-transport-ws) answers an `error` message (BAD_REQUEST) and goes on.

graphql-transport-ws closes a connection that sends no `connection_init` within the view's
`connection_init_wait_timeout` (4408); strawberry's graphql-ws handler waited forever, so
anyone could hold connections open without a token. It closes them the same way here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

_OPTIONAL_OBJECT = (dict, type(None))
_OPTIONAL_TEXT = (str, type(None))


def message_problem(message: object, start: str, ends: str) -> str | None:
    """What is wrong with a message's shape, as a sentence; None when strawberry may read it.
    `start` and `ends` are the protocol's names for starting and stopping an operation."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "A message must be a JSON object with a string `type`."
    kind = message["type"]
    if kind in (start, ends) and not isinstance(message.get("id"), str):
        return "The message's `id` must be a string."
    if kind != start:
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "The message's `payload` must be an object with a string `query`."
    if not isinstance(payload.get("variables"), _OPTIONAL_OBJECT):
        return "The operation's `variables` must be an object or null, if provided."
    if not isinstance(payload.get("operationName"), _OPTIONAL_TEXT):
        return "The operation's `operationName` must be a string or null, if provided."
    return None


class TransportWSHandler(BaseGraphQLTransportWSHandler):
    """graphql-transport-ws: a message of another shape closes the connection with 4400."""

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, "subscribe", "complete")
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)


class LegacyWSHandler(BaseGraphQLWSHandler):
    """graphql-ws: a message of another shape is answered with an `error` message; a connection
    not acknowledged within the wait for `connection_init` is closed with 4408."""

    async def handle(self) -> None:
        deadline = asyncio.create_task(self._close_unless_acknowledged())
        try:
            await super().handle()
        finally:
            deadline.cancel()

    async def _close_unless_acknowledged(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.connection_acknowledged:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, "start", "stop")
        if problem is None:
            await super().handle_message(message)
            return
        error: dict[str, Any] = {"type": "error", "payload": {"message": problem, "extensions": {"code": "BAD_REQUEST"}}}
        if isinstance(message, dict) and isinstance(message.get("id"), str):
            error["id"] = message["id"]
        await self.send_message(error)  # type: ignore[arg-type]
