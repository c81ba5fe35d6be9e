"""The body of a POST to /graphql, bounded before it is read.

A JSON body is at most MAX_JSON_BODY_BYTES; a multipart one (an upload) at most
UDT_MAX_UPLOAD_BYTES plus multipart.ALLOWANCE for its operations and map fields and the
parts' headers. A declared Content-Length over the limit is refused before a byte is
read; a body that streams past it (chunked) is cut off where it passes it: what comes
after is never read, so never spooled. The caller checks the token on the headers first.
A request refused for a reason other than its size or its token, before its body has all
come, has the rest read and dropped within the same limit, so that the client reads the
answer rather than a reset connection.
"""

from __future__ import annotations

import contextlib

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Message, Receive, Scope

from graph.fences.strawberry import parse_content_type
from graph.server import multipart
from models import settings

# A JSON body holds a query (at most MAX_QUERY_CHARS) and small variables; files come as multipart.
MAX_JSON_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    """The body is (or says it is) over its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    @property
    def message(self) -> str:
        return f"The request body is larger than {self.limit} bytes."


def is_multipart(headers: Headers) -> bool:
    """As strawberry tells a multipart request from a JSON one."""
    return parse_content_type(headers.get("content-type", ""))[0] == "multipart/form-data"


class BoundedBody:
    """A request's ASGI `receive` that raises BodyTooLarge once the body passes its limit.
    Build the request on `receive`; `read` it before anything else does."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers = Headers(scope=scope)
        self.multipart = is_multipart(headers)
        self.limit = settings.MAX_UPLOAD_BYTES + multipart.ALLOWANCE if self.multipart else MAX_JSON_BODY_BYTES
        declared = headers.get("content-length", "")
        self.declared = int(declared) if declared.isdigit() else None
        self.has_body = bool(self.declared) or "transfer-encoding" in headers
        self.received = 0
        self.complete = False
        self._receive = receive

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not self.complete:
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.limit:
                raise BodyTooLarge(self.limit)
        return message

    @property
    def unread(self) -> bool:
        """Whether bytes of the body may still be on their way (the connection cannot be reused)."""
        return self.has_body and not self.complete

    async def drain(self) -> None:
        """Read and drop what is left of the body, within the limit: a request refused mid-body
        (a malformed part) then gets its answer whole, on a connection that stays usable."""
        with contextlib.suppress(BodyTooLarge):
            while not self.complete:
                if (await self.receive())["type"] == "http.disconnect":
                    return

    async def read(self, request: Request) -> None:
        """The whole body, into the request's cache (its bytes, or its form) where strawberry
        reads it; BodyTooLarge past the limit, ClientDisconnect if the client hangs up."""
        if self.declared is not None and self.declared > self.limit:
            raise BodyTooLarge(self.limit)
        if self.multipart:
            await multipart.read_form(request)
        else:
            await request.body()
