"""The WebSocket protocol the service runs under uvicorn: a turn's writes leave as one (graph/websocket.py)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode

from graph.websocket import _JoinedWrites, text_frame
from tests.support import serving


async def _connected() -> tuple[asyncio.Transport, asyncio.StreamReader, list[bytes]]:
    """A real TCP connection: the client's transport, whose writes are noted, and the server's reader."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[asyncio.StreamReader] = loop.create_future()
    server = await asyncio.start_server(lambda reader, writer: accepted.set_result(reader), "127.0.0.1", 0)
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", server.sockets[0].getsockname()[1])
    writes: list[bytes] = []
    write = transport.write
    transport.write = lambda data: (writes.append(data), write(data))[-1]  # type: ignore[method-assign]
    return transport, await accepted, writes


async def test_the_writes_of_one_turn_reach_the_socket_as_one_write_in_order() -> None:
    transport, reader, writes = await _connected()
    joined = _JoinedWrites(transport)
    for i in range(20):
        joined.write(b"%d," % i)
    assert writes == []  # not before the turn ends
    await asyncio.sleep(0)
    expected = b"".join(b"%d," % i for i in range(20))
    assert writes == [expected]
    assert await reader.readexactly(len(expected)) == expected
    joined.write(b"next turn")
    await asyncio.sleep(0)
    assert writes == [expected, b"next turn"]
    transport.close()


async def test_what_was_written_before_a_close_still_goes_out() -> None:
    transport, reader, _ = await _connected()
    joined = _JoinedWrites(transport)
    joined.write(b"last words")
    joined.close()
    assert await reader.read() == b"last words"  # then the end of the stream
    assert joined.is_closing()


async def _fails_before_accepting(websocket: WebSocket) -> None:
    raise RuntimeError("boom")


async def _speaks(websocket: WebSocket) -> None:
    await websocket.accept()
    for i in range(100):
        await websocket.send_text(f"message {i}")
    await websocket.close(code=4000)


@pytest.fixture
async def base() -> str:
    app = Starlette(routes=[WebSocketRoute("/fails", _fails_before_accepting), WebSocketRoute("/speaks", _speaks)])
    async with serving(app) as url:
        yield url.replace("http://", "ws://")


async def test_messages_sent_back_to_back_arrive_whole_and_in_order_then_the_close(base: str) -> None:
    async with connect(f"{base}/speaks") as ws:
        assert [await ws.recv() for _ in range(100)] == [f"message {i}" for i in range(100)]
        await ws.wait_closed()
        assert ws.close_code == 4000


async def test_messages_go_uncompressed_though_the_client_offers_compression(base: str) -> None:
    async with connect(f"{base}/speaks", compression="deflate") as ws:  # as browsers do
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []


async def test_a_response_written_just_before_the_transport_closes_reaches_the_client(base: str) -> None:
    # uvicorn answers an app that fails before accepting with a 500, written then closed at once.
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{base}/fails"):
            pass
    assert refused.value.response.status_code == 500


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_is_the_one_the_websockets_library_would_send(size: int) -> None:
    data = b"x" * size
    assert text_frame(data) == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
