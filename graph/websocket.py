"""uvicorn's WebSocket protocol, with the writes of one event-loop turn sent as one.

uvicorn writes each message to the socket as soon as it is sent: one system call per
message. A subscriber woken for a batch of events (graph/fanout.py wakes them at most
every 0.1 s) sends them all in one turn of the loop, so with 500 subscribers of a busy
transfer the API spent a third of its time in `send()` calls of a few hundred bytes.
Here a turn's writes are joined and handed to the transport once, when the turn ends:
the same bytes, in the same order, one call instead of a batch's worth.

Per-message compression is off (`UVICORN`): browsers always offer it, and compressing
each event of a few hundred bytes for each subscriber cost 7 us more per message than the
whole frame (a compressor per connection, too) to save a couple of hundred bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State


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
    n = len(data)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + data


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """What `udt serve` runs WebSockets with (uvicorn's `ws=` takes the class)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = _JoinedWrites(self.transport)  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        """A text message on an open connection is framed here: the websockets library's frame
        checks and serialisation were a sixth of the API's time with 500 subscribers. Anything
        else (handshake, close, bytes, a connection closing or gone, a full buffer) is uvicorn's."""
        text = message.get("text") if message["type"] == "websocket.send" else None
        if (
            text is None
            or not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or self.conn.state is not State.OPEN
            or not self.writable.is_set()
        ):
            return await super().send(message)
        self.transport.write(text_frame(text.encode()))


# What every uvicorn that serves this app is given (`udt serve`, the tests, the benchmarks).
UVICORN: dict[str, Any] = {"ws": WebSocketProtocol, "ws_per_message_deflate": False}
