"""uvicorn's HTTP protocol (httptools), with the head of a request bounded and its refusals in JSON.

httptools gathers a header's value, and uvicorn the URL, for as long as bytes come: one
header of 200 MB, sent by anyone and without a token, held 220 MB of the API's memory
(and kept it after). Here a head (request line and headers) that passes MAX_HEAD_BYTES
is answered 431 in the service's JSON error shape and the connection closed. (h11,
uvicorn's other parser, stops at 16 KiB by itself, but costs more per request.)

What httptools cannot parse (a negative or doubled Content-Length, both Content-Length and
Transfer-Encoding) uvicorn refuses with a plain-text 400: here it is the same 400 in the
service's JSON error shape, BAD_REQUEST.

The count is of whole chunks received while a head is being read; the chunk that ends a
body and starts the next head is not counted, so memory stays within the limit plus one
chunk. The body that follows a head is bounded by the app (graph/bodies.py).
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024



def _refusal(status_line: bytes, message: str, **extensions: Any) -> bytes:
    """A whole response refusing the request, in the JSON error shape, closing the connection."""
    body = json.dumps({"errors": [{"message": message, "extensions": extensions}]}).encode()
    return (
        status_line + b"\r\ncontent-type: application/json\r\ncontent-length: " + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n" + body
    )


_HEAD_TOO_LARGE = _refusal(
    b"HTTP/1.1 431 Request Header Fields Too Large",
    f"The request's line and headers are larger than {MAX_HEAD_BYTES} bytes.",
    code="REQUEST_TOO_LARGE",
    limit=MAX_HEAD_BYTES,
)
_NOT_HTTP = _refusal(b"HTTP/1.1 400 Bad Request", "The request is not valid HTTP/1.1.", code="BAD_REQUEST")


class HttpProtocol(HttpToolsProtocol):
    """What `udt serve` runs HTTP with (uvicorn's `http=` takes the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a connection starts with a head
        self._heads = 0  # heads completed on this connection
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head, self._heads, self._head_bytes = False, self._heads + 1, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next is the next request's head

    def data_received(self, data: bytes) -> None:
        in_head, heads = self._in_head, self._heads
        super().data_received(data)
        if in_head and self._in_head and self._heads == heads and not self.transport.is_closing():
            self._head_bytes += len(data)  # the whole chunk was head
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()

    def _refuse_head(self) -> None:
        self.logger.info("REQUEST_TOO_LARGE: a request head passed %d bytes; the connection is closed.", MAX_HEAD_BYTES)
        if self.cycle is not None and not self.cycle.response_complete:  # an answer is on its way: no second one
            self.transport.close()
            return
        self.transport.write(_HEAD_TOO_LARGE)
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what httptools cannot parse (it logs `msg` at WARNING first)."""
        self.transport.write(_NOT_HTTP)
        self.transport.close()
