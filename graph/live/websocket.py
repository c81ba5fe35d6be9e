"""uvicorn's WebSocket protocol, with the writes of one event-loop turn sent as one.

Subscribers woken for new events (graph/live/fanout.py) all send in one turn of the loop,
where uvicorn makes a system call per message. Here a turn's writes are joined and handed to
the transport once, when the turn ends: the same bytes, in the same order.

A subscriber's batch of events can also travel as one ASGI message (`Messages`, a str that
carries several), so the layers between a subscription and the socket (graphql-core,
strawberry, Starlette, middleware) run once per batch rather than once per event. It goes out
as one frame per message, as if each had been sent alone. Only connections served here are
told they may send it (`SEND_MANY` in the scope's extensions, as ASGI servers announce what
they add).

Per-message compression is off (`UVICORN`): browsers always offer it, and on events of a few
hundred bytes it costs more time per message than the bytes it saves are worth.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from websockets.protocol import State

from graph.fences.uvicorn import WebSocketsSansIOProtocol
from graph.server.heads import HttpProtocol


# The ASGI scope extension that says a `websocket.send` may carry `Messages`.
SEND_MANY = "udt.websocket.send_many"


class Messages(str):
    """Several text messages sent in one `websocket.send`, each to be its own frame: `prefix`
    followed by each of `bodies` (UTF-8). Built from bytes that many subscribers share (an
    event's body), so that only the frames are made per subscriber.

    A str so that every layer on the way passes it on as text; its own text is empty: only a
    server that announced SEND_MANY takes it, and it reads the messages."""

    __slots__ = ("prefix", "bodies")
    prefix: bytes
    bodies: Sequence[bytes]

    def __new__(cls, prefix: bytes, bodies: Sequence[bytes]) -> Messages:
        messages = super().__new__(cls, "")
        messages.prefix, messages.bodies = prefix, bodies
        return messages

    @property
    def texts(self) -> list[str]:
        return [(self.prefix + body).decode() for body in self.bodies]

    def frames(self) -> bytes:
        """Each message as a server's text frame (RFC 6455 5.2), one after the other."""
        prefix, size, parts = self.prefix, len(self.prefix), []
        for body in self.bodies:
            parts += (_frame_head(size + len(body)), prefix, body)
        return b"".join(parts)


def sends_many(scope: Mapping[str, Any]) -> bool:
    """Whether this connection's server takes `Messages`."""
    return SEND_MANY in (scope.get("extensions") or {})


class _JoinedWrites:
    """A transport whose writes wait for the end of the loop's turn, then go out together."""

    __slots__ = ("_transport", "_pending")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data and not self._transport.is_closing():  # closing: flushed by close(), or the peer is gone
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # a close frame written just before must still go out
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, pause_reading, get_extra_info, ...
        return getattr(self._transport, name)


def text_frame(data: bytes) -> bytes:
    """A server's text frame of `data` (RFC 6455 5.2): final, unmasked, uncompressed."""
    return _frame_head(len(data)) + data


_LENGTH_16 = struct.Struct(">BBH").pack


def _frame_head(n: int) -> bytes:
    """A text frame's first bytes, for `n` bytes of text."""
    if n < 126:
        return bytes((0x81, n))
    if n < 1 << 16:
        return _LENGTH_16(0x81, 126, n)
    return bytes((0x81, 127)) + n.to_bytes(8, "big")


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """What `udt serve` runs WebSockets with (uvicorn's `ws=` takes the class)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = _JoinedWrites(self.transport)  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # else refused: no scope, no app
            self.scope["extensions"][SEND_MANY] = {}  # type: ignore[index]  # before the app's task first runs

    async def send(self, message: Any) -> None:
        """A text message on an open connection is framed here: the websockets library's frame
        checks and serialisation cost more than the rest of a send with many subscribers. Anything
        else (handshake, close, bytes, a connection closing or gone) is uvicorn's; `Messages`
        then go to it one by one. Like uvicorn, it first waits for a full buffer to drain."""
        text = message.get("text") if message["type"] == "websocket.send" else None
        if text is not None and not self.writable.is_set():
            await self.writable.wait()  # set again when the buffer drains, or the connection is lost
        if (
            text is None
            or not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or self.conn.state is not State.OPEN
        ):
            if not isinstance(text, Messages):
                return await super().send(message)
            for each in text.texts:
                await super().send({"type": "websocket.send", "text": each})
            return
        if isinstance(text, Messages):
            self.transport.write(text.frames())
        else:
            self.transport.write(text_frame(text.encode()))


# A message holds one operation (a query of at most 20,000 characters and small variables),
# as a JSON body over HTTP does (at most 1 MiB). uvicorn's default, 16 MiB, let anyone,
# before any token is asked for, hold the event loop 0.3 s per message while it was decoded.
MAX_MESSAGE_BYTES = 1024 * 1024

# What every uvicorn that serves this app is given (`udt serve`, the tests, the benchmarks).
UVICORN: dict[str, Any] = {
    "ws": WebSocketProtocol,
    "ws_per_message_deflate": False,
    "ws_max_size": MAX_MESSAGE_BYTES,
    "http": HttpProtocol,
}
