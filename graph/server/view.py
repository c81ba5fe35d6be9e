"""The GraphQL view: strawberry's ASGI app at /graphql, with this service's checks of every request."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry import UNSET
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from graph.api.schema import schema
from graph.core.context import Context, operator_from_connection
from graph.core.errors import current_request_id
from graph.fences.strawberry import AsyncHTTPRequestAdapter, HTTPException, UnsetType, parse_content_type
from graph.live.encoding import encoded_message
from graph.live.ws_protocols import LegacyWSHandler, TransportWSHandler
from graph.server import multipart, refusals
from graph.server.bodies import BodyTooLarge, BoundedBody
from graph.server.graphiql import graphiql_page
from graph.server.refusals import BadRequest, error_response
from models import settings
from models.db import is_unavailable

log = logging.getLogger(__name__)


def _decode(data: str | bytes) -> Any:
    """JSON text, or a 400 saying what is wrong with it."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8.") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadRequest("The JSON is nested too deeply.") from None
    except ValueError:  # not JSON, or an integer past Python's 4,300 digits
        raise BadRequest("The request body is not valid JSON.") from None
    return value  # text the database cannot store is refused where it is an argument (graph/execution/text_arguments.py)


def carries_an_operation(request: Request) -> bool:
    """A POST, or a GET with a `query` (as strawberry tells it from a request for GraphiQL's page)."""
    return request.method == "POST" or (request.method == "GET" and request.query_params.get("query") is not None)


class GraphQLApp(GraphQL):
    """strawberry's ASGI view, answering every malformed HTTP request with 400 and a JSON GraphQL error;
    the token of a request carrying an operation is checked on its headers, before a POST's body
    is read within its limit (graph/server/bodies.py). GraphiQL's page needs none."""

    graphql_transport_ws_handler_class = TransportWSHandler  # malformed WebSocket messages: graph/live/ws_protocols.py
    graphql_ws_handler_class = LegacyWSHandler

    async def get_context(self, request: Any, response: Any) -> Context:
        state = request.app.state
        context = Context(request=request, response=response, pool=state.pool, fanout=state.fanout)
        operator = getattr(request.state, "operator", None)  # found on the headers (_admit)
        if operator is not None:
            context.known(operator)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """Refuse a WebSocket at `connection_init` unless it carries a live token: graphql-transport-ws
        closes with 4403 Forbidden, graphql-ws answers `connection_error` (with this payload)."""
        if await context.operator() is None:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "A valid token is required in the connection_init payload."}
            )
        return UNSET  # a plain connection_ack, with no payload

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_page())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        if scope["method"] == "HEAD":  # as a GET, as every Allow says; uvicorn sends no body for it
            scope = {**scope, "method": "GET"}
        body = BoundedBody(scope, receive)
        request = Request(scope=scope, receive=body.receive)
        try:
            response = await self._answer(request, body)
            if body.unread and response.status_code not in (401, 413):  # refused for what the body holds
                await body.drain()
        except ClientDisconnect:
            log.info("The client hung up before its whole request body came (%s bytes declared).", body.declared or "no length")
            return
        finally:
            await request.close()  # an upload's spooled file, whatever the outcome
        if body.unread:  # refused before the whole body came (its token, its size): the rest is never read
            response.headers["Connection"] = "close"
        await response(scope, receive, send)

    async def _answer(self, request: Request, body: BoundedBody) -> Response:
        try:
            if carries_an_operation(request):
                refusal = await self._admit(request, body)
                if refusal is not None:
                    return refusal
            return await self.run(request)
        except HTTPException as exc:
            return error_response(exc.status_code, exc.reason, refusals.CODES.get(exc.status_code, "BAD_REQUEST"))
        except ClientDisconnect:
            raise
        except Exception as exc:
            found = current_request_id()
            if is_unavailable(exc):
                return refusals.unavailable(found)
            log.exception("Unexpected error, requestId=%s", found)
            return refusals.internal_error(found)

    async def _admit(self, request: Request, body: BoundedBody) -> Response | None:
        """The token, checked on the headers, then the body (a GET's is empty), read within its limit;
        None when both pass."""
        operator = await operator_from_connection(request)
        if operator is None:
            return refusals.unauthenticated()
        request.state.operator = operator
        try:
            await body.read(request)
        except BodyTooLarge as exc:
            log.info("REQUEST_TOO_LARGE: %s", exc.message)
            return error_response(413, exc.message, "REQUEST_TOO_LARGE", limit=exc.limit)
        return None

    def encode_json(self, data: object) -> str | bytes:
        """A subscription event's result that others share is JSON already (graph/execution/shared_events.py);
        the rest is encoded by orjson, faster than json.dumps on a page of users.
        Text, not bytes: strawberry sends bytes over a WebSocket as a binary frame."""
        encoded = encoded_message(data)
        if encoded is not None:
            return encoded
        try:
            return orjson.dumps(data).decode()
        except TypeError:  # what orjson does not take (an integer past 64 bits, a lone surrogate): as strawberry would
            return super().encode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        """Any undecodable text is a JSONDecodeError, which every caller (WebSocket too) refuses politely."""
        try:
            return json.loads(data)
        except (RecursionError, ValueError) as exc:  # nested too deep; not UTF-8; an int past 4,300 digits
            if isinstance(exc, json.JSONDecodeError):
                raise
            raise json.JSONDecodeError(type(exc).__name__, "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        """A JSON object (or array) of text, or a 400 saying what is wrong with it."""
        value = _decode(data)
        if not isinstance(value, (dict, list)):
            raise BadRequest("The request must be a JSON object.")
        return value

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> Any:
        """The form read (within its limits) before the view ran, its files placed as the specification says."""
        form = (await request.get_form_data()).form
        return multipart.operations(form, self.parse_json)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        media_type = parse_content_type(request.content_type or "")[0]
        if request.method == "POST" and "application/json" not in media_type and media_type != "multipart/form-data":
            raise BadRequest("A POST to /graphql carries JSON (Content-Type: application/json) or an upload (multipart/form-data).")
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item.operation_name, (str, type(None))):
                raise BadRequest("The GraphQL operation's `operationName` must be a string or null, if provided.")
        return data


def graphql_app() -> GraphQLApp:
    return GraphQLApp(
        schema,
        graphql_ide="graphiql",
        # Off by default in strawberry because a cross-site form could post a file
        # with the user's cookies. Here auth is only ever an Authorization header,
        # which no cross-site form can send, so uploads are safe to accept.
        multipart_uploads_enabled=True,
        keep_alive=True,
        keep_alive_interval=15,
        allowed_origins=settings.ALLOWED_ORIGINS,
    )
