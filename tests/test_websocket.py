"""The WebSocket protocol the service runs under uvicorn: a turn's writes leave as one (graph/live/websocket.py)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from graph.live.websocket import MAX_MESSAGE_BYTES, Messages, _JoinedWrites, sends_many, text_frame
from tests.support import TRANSPORT_WS, Api, serving


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


SENT_IN_BATCHES: list[int] = []


async def _speaks_in_batches(websocket: WebSocket) -> None:
    """Says whether its server takes `Messages`, then sends 40 batches of 25 messages of 10 KB
    if it does: 10 MB, which a client that does not read leaves in the server's buffers."""
    await websocket.accept()
    await websocket.send_text(f"sends many: {sends_many(websocket.scope)}")
    if sends_many(websocket.scope):
        await websocket.send_text(Messages(b"", []))  # nothing at all
        for batch in range(40):
            await websocket.send_text(Messages(f"{batch}.".encode(), [f"{i} ".ljust(10_000, "x").encode() for i in range(25)]))
            SENT_IN_BATCHES.append(batch)
            await asyncio.sleep(0)  # as a subscription waits for its next events: its writes leave
        await websocket.send_text("alone")
    await websocket.close(code=4000)


ROUTES = [
    WebSocketRoute("/fails", _fails_before_accepting),
    WebSocketRoute("/speaks", _speaks),
    WebSocketRoute("/batches", _speaks_in_batches),
]


@pytest.fixture
async def base() -> str:
    async with serving(Starlette(routes=ROUTES)) as url:
        yield url.replace("http://", "ws://")


async def test_messages_sent_back_to_back_arrive_whole_and_in_order_then_the_close(base: str) -> None:
    async with connect(f"{base}/speaks") as ws:
        assert [await ws.recv() for _ in range(100)] == [f"message {i}" for i in range(100)]
        await ws.wait_closed()
        assert ws.close_code == 4000


async def test_messages_sent_together_arrive_one_frame_each_in_order_though_the_client_reads_late(base: str) -> None:
    SENT_IN_BATCHES.clear()
    async with connect(f"{base}/batches", max_queue=4) as ws:
        assert await ws.recv() == "sends many: True"
        await asyncio.sleep(0.5)  # the buffers are full by now: the sender waits for them to drain
        assert 0 < len(SENT_IN_BATCHES) < 40
        expected = [f"{batch}." + f"{i} ".ljust(10_000, "x") for batch in range(40) for i in range(25)] + ["alone"]
        assert [await ws.recv() for _ in expected] == expected
        await ws.wait_closed()
        assert ws.close_code == 4000


async def test_a_server_that_does_not_take_messages_sent_together_is_not_told_it_does() -> None:
    async with serving(Starlette(routes=ROUTES), ws="websockets-sansio") as url, connect(f"{url.replace('http', 'ws')}/batches") as ws:
        assert await ws.recv() == "sends many: False"
        await ws.wait_closed()
        assert ws.close_code == 4000


async def test_a_refused_upgrade_is_answered_400_and_holds_nothing_up() -> None:
    async with asyncio.timeout(10):  # the server's shutdown waits for every connection it still holds
        async with serving(Starlette(routes=ROUTES)) as url:
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            writer.write(b"GET /speaks HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")  # no key
            assert (await reader.readline()).startswith(b"HTTP/1.1 400")
            writer.close()


async def test_messages_go_uncompressed_though_the_client_offers_compression(base: str) -> None:
    async with connect(f"{base}/speaks", compression="deflate") as ws:  # as browsers do
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        assert [await ws.recv() for _ in range(100)] == [f"message {i}" for i in range(100)]  # read: a full queue stalls the close


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


async def test_a_message_over_the_size_limit_closes_the_connection_before_it_is_decoded(api: Api) -> None:
    url = api.base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[TRANSPORT_WS], max_size=None) as ws:
        await ws.send('{"type": "connection_init", "payload": {"x": "' + "a" * MAX_MESSAGE_BYTES + '"}}')
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1009  # message too big (RFC 6455), whoever sends it
