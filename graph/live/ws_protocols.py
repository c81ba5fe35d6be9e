"""The two GraphQL WebSocket protocols, each message's shape checked before strawberry reads it.

strawberry's handlers index a message as the protocols describe it, and end the connection
with a traceback on anything else. Here a message that is not an object (`5`, `[]`), or a
`start`/`subscribe` whose payload, query, variables, operationName or id has another type, is
refused as each protocol says: graphql-transport-ws closes the connection with 4400 and a
reason; graphql-ws (subscriptions-transport-ws) answers an `error` message (BAD_REQUEST) and
goes on.

graphql-ws does here what graphql-transport-ws does for the same thing, where strawberry's
handler does not: no `connection_init` within the view's `connection_init_wait_timeout`
closes with 4408 (else anyone could hold connections open without a token); a second init
with 4429 (each would start a keep-alive task); a running id started again with 4409; a
refused init with 4403 after its `connection_error` (4400 for a payload that is not an
object). As its protocol says, text that is not JSON is answered with a `connection_error`
and an unknown type with an `error` (both BAD_REQUEST); the connection goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

from strawberry.exceptions import ConnectionRejectionError

from graph.fences.strawberry import (
    BaseGraphQLTransportWSHandler,
    BaseGraphQLWSHandler,
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)

_OPTIONAL_OBJECT = (dict, type(None))
_LEGACY_TYPES = ("connection_init", "connection_terminate", "start", "stop")
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

    _initialised = False  # a connection_init came (acknowledged or not)

    async def handle(self) -> None:
        """strawberry's loop (0.341) over messages, with text that is not JSON answered."""
        deadline = asyncio.create_task(self._close_unless_acknowledged())
        try:
            async for message in self._messages():
                await self.handle_message(message)
        except NonTextMessageReceived:
            await self.websocket.close(code=1002, reason="WebSocket message type must be text")
        except WebSocketDisconnected:
            pass
        finally:
            deadline.cancel()
            if self.keep_alive_task:
                self.keep_alive_task.cancel()
                with suppress(BaseException):
                    await self.keep_alive_task
            await self.cleanup()

    async def _messages(self) -> AsyncIterator[Any]:
        """Each message as JSON; text that is not JSON gets a `connection_error` and is skipped."""
        while True:
            try:
                async for message in self.websocket.iter_json():
                    yield message
                return
            except NonJsonMessageReceived:
                await self._connection_error("BAD_REQUEST", "A message must be JSON.")

    async def _close_unless_acknowledged(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.connection_acknowledged:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, "start", "stop")
        if problem is None and message["type"] not in _LEGACY_TYPES:
            problem = "The message's `type` must be connection_init, connection_terminate, start or stop."
        if problem is None:
            await super().handle_message(message)
            return
        error: dict[str, Any] = {"type": "error", "payload": {"message": problem, "extensions": {"code": "BAD_REQUEST"}}}
        if isinstance(message, dict) and isinstance(message.get("id"), str):
            error["id"] = message["id"]
        await self.send_message(error)  # type: ignore[arg-type]

    async def handle_connection_init(self, message: Any) -> None:
        """strawberry's, but a second init closes 4429 and a refusal closes 4xxx, as graphql-transport-ws does."""
        if self._initialised:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self._initialised = True
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            await self._connection_error("BAD_REQUEST", "The connection_init payload must be an object.")
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        self.context.connection_params = payload
        try:
            await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as refused:
            await self.send_message({"type": "connection_error", "payload": refused.payload})  # type: ignore[typeddict-item]
            await self.websocket.close(code=4403, reason="Forbidden")
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())

    async def handle_start(self, message: Any) -> None:
        if self.connection_acknowledged and message["id"] in self.tasks:
            await self.websocket.close(code=4409, reason=f"Subscriber for {message['id']} already exists")
            return
        await super().handle_start(message)

    async def _connection_error(self, code: str, message: str) -> None:
        await self.send_message({"type": "connection_error", "payload": {"code": code, "message": message}})  # type: ignore[typeddict-item]
