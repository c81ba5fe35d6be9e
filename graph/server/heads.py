"""uvicorn's HTTP protocol (httptools), with the head of a request bounded in size and time, a
stalled body in time, and its refusals in JSON.

httptools gathers a header's value, and uvicorn the URL, for as long as bytes come; uvicorn's
keep-alive timeout runs only between a response and the next byte. So anyone, without a
token, could hold the API's memory with one endless header, or its open files with sockets
that send half a head. Here a head (request line and headers) that passes MAX_HEAD_BYTES is
answered 431 in the service's JSON error shape and the connection closed, before the bytes
past the limit reach the parser; a head must be complete within HEAD_SECONDS of the
connection or of the previous response, and a body must not go BODY_IDLE_SECONDS without a
byte while it is awaited (reading paused by us does not count): else 408, REQUEST_TIMEOUT,
and the connection is closed. (h11, uvicorn's other parser, bounds a head itself, but costs
more per request.)

What httptools cannot parse (a negative or doubled Content-Length, both Content-Length and
Transfer-Encoding) uvicorn refuses with a plain-text 400: here it is the same 400 in the
service's JSON error shape, BAD_REQUEST.

A head is counted exactly up to its blank line when it is the first thing in a chunk; the
next head that starts in the chunk ending a body is counted from the following chunk, so
memory stays within the limit plus one chunk. The body that follows a head is bounded by
the app (graph/server/bodies.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from graph.fences.uvicorn import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
HEAD_SECONDS = 10.0  # from the connection, or from the previous response
BODY_IDLE_SECONDS = 30.0  # without a byte of a body the app awaits
LINGER_SECONDS = 2.0  # after a refusal, what still comes is read and dropped, so that the peer reads the refusal
_HEAD_END = b"\r\n\r\n"


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
_TIMED_OUT = _refusal(
    b"HTTP/1.1 408 Request Timeout", "The request did not come in time.", code="REQUEST_TIMEOUT"
)
_NOT_HTTP = _refusal(b"HTTP/1.1 400 Bad Request", "The request is not valid HTTP/1.1.", code="BAD_REQUEST")


def head_bytes(tail: bytes, data: bytes) -> int | None:
    """How many bytes of `data` end the head whose last bytes so far are `tail` (up to 3); None
    when the head goes on past `data`."""
    ends = (tail + data[:3]).find(_HEAD_END)
    if ends >= 0:
        return ends + len(_HEAD_END) - len(tail)
    ends = data.find(_HEAD_END)
    return None if ends < 0 else ends + len(_HEAD_END)


class HttpProtocol(HttpToolsProtocol):
    """What `udt serve` runs HTTP with (uvicorn's `http=` takes the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a connection starts with a head
        self._head_bytes = 0
        self._head_tail = b""  # the head's last bytes so far: its blank line may straddle two chunks
        self._deadline: asyncio.TimerHandle | None = None
        self._heard = 0.0  # the loop's time of the last byte received
        self._refused = False  # a refusal went out: what comes now is dropped until the connection closes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(HEAD_SECONDS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes, self._head_tail = False, 0, b""
        super().on_headers_complete()
        self._arm(BODY_IDLE_SECONDS)  # GET's message completes at once, disarming it

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next is the next request's head
        self._disarm()  # the app's to answer, or a WebSocket's connection: the next head's time starts at the answer

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(HEAD_SECONDS)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._heard = self.loop.time()
        if self._in_head and not self.transport.is_closing():
            ends = head_bytes(self._head_tail, data)
            self._head_bytes += len(data) if ends is None else ends
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
            self._head_tail = (self._head_tail + data[-3:])[-3:]
        super().data_received(data)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._on_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        """A head not complete in time, or a body silent too long. Not while the app works on a whole
        request (armed again by its answer), nor while we paused reading (the app has not taken
        the body so far)."""
        self._deadline = None
        if self.transport.is_closing() or self._refused:
            return
        working = self.cycle is not None and not self.cycle.response_complete
        if self._in_head and working:
            return
        if not self._in_head:
            silent = self.loop.time() - self._heard
            if self.flow.read_paused or silent < BODY_IDLE_SECONDS:
                self._arm(BODY_IDLE_SECONDS - (0 if self.flow.read_paused else silent))
                return
        part = "head" if self._in_head else "body"
        self.logger.info("REQUEST_TIMEOUT: a request's %s did not come in time; the connection is closed.", part)
        if not self._in_head and self.cycle.response_started:  # an answer went out: no second one
            self.transport.close()
            return
        self._refuse(_TIMED_OUT)

    def _refuse_head(self) -> None:
        self.logger.info("REQUEST_TOO_LARGE: a request head passed %d bytes; the connection is closed.", MAX_HEAD_BYTES)
        if self.cycle is not None and not self.cycle.response_complete:  # an answer is on its way: no second one
            self.transport.close()
            return
        self._refuse(_HEAD_TOO_LARGE)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what httptools cannot parse (it logs `msg` at WARNING first)."""
        self._refuse(_NOT_HTTP)

    def _refuse(self, response: bytes) -> None:
        """Answer and close. Closing a socket with unread bytes resets it, and the peer may lose the
        answer with them: so our side is shut first, and what still comes is dropped for a while."""
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's receive() says http.disconnect; its answer is dropped
            self.cycle.message_event.set()
        self.transport.write(response)
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._refused = True
        self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
