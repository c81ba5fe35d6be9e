"""A request's head is bounded: MAX_HEAD_BYTES exactly, request line included (431 past it), and
HEAD_SECONDS from the connection or the previous response (408); a body the app awaits may not
go BODY_IDLE_SECONDS without a byte (408). Either way the connection is closed.

Each test talks to the running app over a socket of its own, sending only what it says; the
deadlines are shortened for the test, the mechanism is the server's."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.asyncio.client import connect

from graph.server import heads
from graph.server.heads import MAX_HEAD_BYTES
from tests.support import LEGACY_WS, Api, RawAnswer, RawConnection, World, next_message


def head_of(size: int, line: str = "GET /healthz HTTP/1.1") -> bytes:
    """A head of exactly `size` bytes, blank line included, padded by one header."""
    start, end = f"{line}\r\nHost: test\r\nX-Padding: ".encode(), b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def refused(answer: RawAnswer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    (error,) = answer.json()["errors"]
    assert error["extensions"]["code"] == code


async def test_a_head_of_exactly_the_limit_is_answered(api: Api) -> None:
    async with RawConnection(api.base) as conn:
        await conn.send(head_of(MAX_HEAD_BYTES))
        assert (await conn.answer()).status == 200


@pytest.mark.parametrize(
    "head",
    [
        head_of(MAX_HEAD_BYTES + 1),
        head_of(120_000),
        b"GET /healthz?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: test\r\n" + b"X-a: b\r\n" * 20_000 + b"\r\n",
    ],
    ids=["one byte over", "one large header", "a long request line", "many small headers"],
)
async def test_a_head_past_the_limit_by_any_measure_is_431_and_closed(api: Api, head: bytes) -> None:
    async with RawConnection(api.base) as conn:
        await conn.send(head)
        refused(await conn.answer(), 431, "REQUEST_TOO_LARGE")
        assert await conn.closed_by_server()


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads, "HEAD_SECONDS", 1.0)
    monkeypatch.setattr(heads, "BODY_IDLE_SECONDS", 1.0)


@pytest.mark.parametrize(
    "sent", [b"", b"POST /graphql HTTP/1.1\r\nHost: x\r\n"], ids=["nothing", "an unfinished head"]
)
async def test_a_head_not_complete_within_its_deadline_is_408_and_closed(
    api: Api, short_deadlines: None, sent: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with RawConnection(api.base) as conn:
            await conn.send(sent)
            refused(await conn.answer(timeout=10), 408, "REQUEST_TIMEOUT")
            assert await conn.closed_by_server()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_head_dripped_a_byte_at_a_time_is_cut_at_its_deadline(api: Api, short_deadlines: None) -> None:
    async with RawConnection(api.base) as conn:
        async def drip() -> None:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: " + b"a" * 1000:
                await conn.send(bytes([byte]))
                await asyncio.sleep(0.05)

        dripping = asyncio.create_task(drip())
        try:
            refused(await conn.answer(timeout=10), 408, "REQUEST_TIMEOUT")
        finally:
            dripping.cancel()
        assert not dripping.done() or dripping.cancelled()  # bytes were still coming when it was cut


async def test_each_heads_deadline_counts_from_the_previous_response(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads, "HEAD_SECONDS", 2.0)
    async with RawConnection(api.base) as conn:
        for _ in range(3):  # 2.4 s in all: past one deadline, within each
            await conn.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            assert (await conn.answer()).status == 200
            await asyncio.sleep(1.2)


async def test_a_body_silent_past_its_deadline_is_408_and_closed(
    api: Api, world: World, short_deadlines: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with RawConnection(api.base) as conn:
            headers = {"Content-Type": "application/json", "Content-Length": "1000", "Authorization": f"Bearer {world.admin}"}
            await conn.head("POST", "/graphql", headers)
            await conn.send(b'{"query": ')
            refused(await conn.answer(timeout=10), 408, "REQUEST_TIMEOUT")
            assert await conn.closed_by_server()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_body_that_keeps_coming_is_read_past_the_deadline(api: Api, world: World, short_deadlines: None) -> None:
    body = json.dumps({"query": "{ __typename }"}).encode()
    async with RawConnection(api.base) as conn:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Authorization": f"Bearer {world.admin}"}
        await conn.head("POST", "/graphql", headers)
        for i in range(0, len(body), 4):  # about 2 s in all, never 1 s silent
            await conn.send(body[i : i + 4])
            await asyncio.sleep(0.25)
        answer = await conn.answer()
        assert answer.status == 200 and answer.json() == {"data": {"__typename": "Query"}}


async def test_a_websocket_outlives_the_head_deadline(
    api: Api, world: World, short_deadlines: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await use_a_websocket_past_the_deadlines(api, world)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def use_a_websocket_past_the_deadlines(api: Api, world: World) -> None:
    async with connect(api.base.replace("http://", "ws://") + "/graphql", subprotocols=[LEGACY_WS]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {world.admin}"}}))
        assert (await next_message(ws))["type"] == "connection_ack"
        await asyncio.sleep(1.5)
        await ws.send(json.dumps({"type": "start", "id": "1", "payload": {"query": "{ __typename }"}}))
        assert (await next_message(ws))["payload"] == {"data": {"__typename": "Query"}}
