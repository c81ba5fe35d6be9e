"""The legacy graphql-ws protocol (subscriptions-transport-ws) refuses what graphql-transport-ws
refuses, with the same close codes: one `connection_init` per connection, one operation per id,
and a refusal that does not look like a server fault. Text that is not JSON and unknown message
types are answered, as that protocol says, and the connection goes on.

Each test talks to the running app over a WebSocket of its own."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from graph.core.relay import to_global_id
from models import starting
from tests.support import EVENTS, LEGACY_WS, SUBSCRIPTION_TIMEOUT, Api, World, next_message, run_pairs


def legacy(api: Api) -> Any:
    return connect(api.base.replace("http://", "ws://") + "/graphql", subprotocols=[LEGACY_WS])  # type: ignore[list-item]


def init(token: str) -> str:
    return json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})


async def acknowledged(ws: ClientConnection, token: str) -> None:
    await ws.send(init(token))
    assert (await next_message(ws))["type"] == "connection_ack"


async def closing(ws: ClientConnection) -> list[dict]:
    """Every message until the server closes the connection (keep-alives left out)."""
    said = []
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(SUBSCRIPTION_TIMEOUT):
            while True:
                said.append(await next_message(ws))
    return said


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_second_connection_init_closes_4429_and_leaves_no_task_behind(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with legacy(api) as ws:
            await acknowledged(ws, world.admin)
            for _ in range(3):
                await ws.send(init(world.admin))
            assert await closing(ws) == []
            assert ws.close_code == 4429 and ws.close_reason == "Too many initialisation requests"
        await asyncio.sleep(0)  # let the server's side of the close run
    no_errors_logged(caplog)


async def test_text_that_is_not_json_is_a_connection_error_and_the_connection_goes_on(api: Api, world: World) -> None:
    async with legacy(api) as ws:
        await ws.send("{")
        said = await next_message(ws)
        assert said == {"type": "connection_error", "payload": {"code": "BAD_REQUEST", "message": "A message must be JSON."}}
        await acknowledged(ws, world.admin)


@pytest.mark.parametrize("kind", ["subscribe", "ka", "connection_ack", "START"])
async def test_an_unknown_message_type_is_a_bad_request_error_and_the_connection_goes_on(
    api: Api, world: World, kind: str
) -> None:
    async with legacy(api) as ws:
        await acknowledged(ws, world.admin)
        await ws.send(json.dumps({"type": kind, "id": "7", "payload": {"query": "{ __typename }"}}))
        said = await next_message(ws)
        assert said["type"] == "error" and said["id"] == "7"
        assert said["payload"]["extensions"]["code"] == "BAD_REQUEST"
        await ws.send(json.dumps({"type": "start", "id": "8", "payload": {"query": "{ __typename }"}}))
        assert (await next_message(ws))["payload"] == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("payload", ["Bearer x", [1], 42, True])
async def test_an_init_payload_that_is_not_an_object_is_a_bad_request_then_closed_4400(api: Api, payload: object) -> None:
    async with legacy(api) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        said = await closing(ws)
        assert [m["type"] for m in said] == ["connection_error"]
        assert said[0]["payload"]["code"] == "BAD_REQUEST"
        assert ws.close_code == 4400


async def test_a_refused_token_is_a_connection_error_then_closed_4403_not_as_a_server_fault(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with legacy(api) as ws:
            await ws.send(init("udt_not-a-token"))
            said = await closing(ws)
            assert [m["payload"]["code"] for m in said] == ["UNAUTHENTICATED"]
            assert (ws.close_code, ws.close_reason) == (4403, "Forbidden")
    no_errors_logged(caplog)


async def test_a_start_under_the_id_of_a_running_operation_closes_4409(api: Api, world: World) -> None:
    await world.stock(10)
    transfer, problems = await starting.start_single(world.users[1], 10, 11)  # queued, never run: its events go on
    assert problems == []
    variables = {"id": to_global_id("Transfer", transfer.id)}
    watch = json.dumps({"type": "start", "id": "w", "payload": {"query": EVENTS, "variables": variables}})
    try:
        async with legacy(api) as ws:
            await acknowledged(ws, world.admin)
            await ws.send(watch)
            assert (await next_message(ws))["type"] == "data"  # the transfer's events are being watched
            await ws.send(watch)
            said = await closing(ws)
            assert all(m["type"] == "data" and m["id"] == "w" for m in said)  # the running one is never completed by it
            assert (ws.close_code, ws.close_reason) == (4409, "Subscriber for w already exists")
    finally:
        await run_pairs(transfer.id)  # no queued transfer left for another test's workers to find


async def test_an_id_may_be_started_again_once_its_operation_completed(api: Api, world: World) -> None:
    async with legacy(api) as ws:
        await acknowledged(ws, world.admin)
        for _ in range(2):
            await ws.send(json.dumps({"type": "start", "id": "1", "payload": {"query": "{ __typename }"}}))
            assert (await next_message(ws))["payload"] == {"data": {"__typename": "Query"}}
            assert (await next_message(ws)) == {"type": "complete", "id": "1"}
