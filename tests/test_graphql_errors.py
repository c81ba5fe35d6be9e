"""Every error the API returns carries `extensions.code`, over HTTP and both WebSocket protocols,
whether the document is new or answered from the document cache; refusals of the caller are
logged at INFO without a trace; nothing of a refused document runs."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect
from starlette.routing import WebSocketRoute
from websockets.exceptions import ConnectionClosed

from graph.execution import limits
from models.transfers import Transfer
from tests.support import LEGACY_WS, SUBSCRIPTION_TIMEOUT, TRANSPORT_WS, Api, Socket, World, answer, next_message, serving

VALIDATION = "GRAPHQL_VALIDATION_FAILED"
INTERNAL = ("Traceback", "object has no attribute", "codec", "sqlite", "asyncpg", "strawberry", "site-packages", "Exception")
INTROSPECTION_TOO_DEEP = "{ __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }"

# (document, variables, operationName, the code of every error)
BAD: list[tuple[str, dict | None, str | None, str]] = [
    ("{", None, None, "GRAPHQL_PARSE_FAILED"),
    ("{ users(first: 1) { totalCount }", None, None, "GRAPHQL_PARSE_FAILED"),
    ('{ __typename(x: "\\ud800") }', None, None, "GRAPHQL_PARSE_FAILED"),
    ("{ nope }", None, None, VALIDATION),
    ("{ users(nope: 1) { totalCount } }", None, None, VALIDATION),
    ("{ __typename @nope }", None, None, VALIDATION),
    ('{ users(first: "x") { totalCount } }', None, None, VALIDATION),
    ("{ users { nope } }", None, None, VALIDATION),
    ("{ " + " ".join(f"f{i}" for i in range(110)) + " }", None, None, VALIDATION),  # ends "Validation aborted."
    (INTROSPECTION_TOO_DEEP, None, None, VALIDATION),
    ("fragment F on Query { __typename }", None, None, VALIDATION),
    ("query ($x: Int) { __typename }", None, None, VALIDATION),
    ("query A { __typename } query B { __typename }", None, None, "OPERATION_NAME_REQUIRED"),
    ("query A { __typename } query B { __typename }", None, "C", "OPERATION_NAME_REQUIRED"),
    ("{ __typename }", None, "A", "OPERATION_NAME_REQUIRED"),
    ("query ($n: Int!) { user(userId: $n) { id } }", {"n": "x"}, None, "BAD_USER_INPUT"),
    ("query ($n: Int!) { user(userId: $n) { id } }", None, None, "BAD_USER_INPUT"),
    ('{ transfer(id: "\\u0000") { id } }', None, None, "INVALID_TEXT"),
    ("query ($id: ID!) { transfer(id: $id) { id } }", {"id": "\x00"}, None, "INVALID_TEXT"),
    ("{ users(first: -1) { totalCount } }", None, None, "INVALID_PAGE_SIZE"),
    ('{ users(after: "garbage") { totalCount } }', None, None, "INVALID_CURSOR"),
    ('{ users(filter: {search: "' + "a " * 50 + '"}) { totalCount } }', None, None, "INVALID_SEARCH"),
    ("{ __typename(x: " + "[" * 50 + "]" * 50 + ") }", None, None, "QUERY_TOO_DEEP"),
    ("{ " + " ".join(f"a{i}: __typename" for i in range(limits.MAX_ALIASES + 1)) + " }", None, None, "TOO_MANY_ALIASES"),
    ("{ __typename(x: " + "9" * 60 + ") }", None, None, VALIDATION),
]


def request(query: str, variables: dict | None, name: str | None) -> dict[str, Any]:
    return {"query": query, "variables": variables, "operationName": name}


def refusal(result: dict) -> list[dict]:
    """The errors of a refused operation, which has no data."""
    assert result.get("data") is None, result
    return result["errors"]


def assert_coded(errors: list[dict], code: str, case: object) -> None:
    assert errors, case
    for error in errors:
        assert (error.get("extensions") or {}).get("code") == code, (case, error)
        assert error["message"] and not any(word in error["message"] for word in INTERNAL), (case, error)


async def test_every_refused_document_has_a_code_over_http_and_both_websocket_protocols_twice(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(2):  # the second time, parse and validation answers come from the document cache
            for query, variables, name, code in BAD:
                assert_coded(refusal(await answer(api, world.admin, request(query, variables, name), None)), code, (query, name))
            for protocol in (TRANSPORT_WS, LEGACY_WS):
                async with Socket(api, world.admin, protocol) as socket:  # one connection: no refusal ends it
                    for query, variables, name, code in BAD:
                        assert_coded(refusal(await socket.result(request(query, variables, name))), code, (protocol, query, name))
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    refusals = [r.getMessage() for r in caplog.records if r.name == "graph.core.errors"]
    assert any(m.startswith("GRAPHQL_PARSE_FAILED: ") for m in refusals)


async def test_validation_gives_up_after_a_hundred_errors_with_a_code_and_one_log_line(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        errors = refusal(await answer(api, world.admin, request("{ " + " ".join(f"f{i}" for i in range(110)) + " }", None, None), None))
    assert errors[-1]["message"].endswith("Validation aborted.")
    assert {e["extensions"]["code"] for e in errors} == {VALIDATION}
    (line,) = [r.getMessage() for r in caplog.records if r.name == "graph.core.errors"]  # one line, not 101
    assert line.startswith(f"{VALIDATION}: ") and line.endswith(f"(and {len(errors) - 1} more)")
    (deep,) = refusal(await answer(api, world.admin, request(INTROSPECTION_TOO_DEEP, None, None), None))
    assert deep["message"] == "Maximum introspection depth exceeded"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_both_websocket_protocols_run_queries_and_mutations_too(
    api: Api, world: World, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    await world.stock(10)
    with caplog.at_level(logging.INFO):
        assert (await api.via(protocol, "{ viewer { canTransfer } }", world.admin)) == {"viewer": {"canTransfer": True}}
        started = (await api.via(protocol, START, world.admin))["startTransfer"]
    assert (await api.wait_finished(world.admin, started["transfer"]["id"]))["status"] == "SUCCEEDED"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


START = "mutation A { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true}) { transfer { id } } }"


@pytest.mark.parametrize("protocol", [None, TRANSPORT_WS, LEGACY_WS])
async def test_a_document_of_several_operations_runs_only_the_one_named(api: Api, world: World, protocol: str | None) -> None:
    await world.stock(10)
    document = START + " query B { __typename }"
    for name in (None, "C"):
        (error,) = refusal(await answer(api, world.admin, request(document, None, name), protocol))
        assert error["extensions"]["code"] == "OPERATION_NAME_REQUIRED", name
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0  # the mutation did not run
    assert await answer(api, world.admin, request(document, None, "B"), protocol) == {"data": {"__typename": "Query"}}
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0
    started = (await answer(api, world.admin, request(document, None, "A"), protocol))["data"]["startTransfer"]
    await api.wait_finished(world.admin, started["transfer"]["id"])


MALFORMED: list[object] = [
    5,
    [],
    {},
    {"type": 5},
    {"type": "START"},
    {"type": "START", "id": "1"},
    {"type": "START", "id": "1", "payload": 5},
    {"type": "START", "id": "1", "payload": {"query": 5}},
    {"type": "START", "id": "1", "payload": {"query": "{ __typename }", "variables": 5}},
    {"type": "START", "id": "1", "payload": {"query": "{ __typename }", "operationName": 5}},
    {"type": "START", "id": ["1"], "payload": {"query": "{ __typename }"}},
]


@pytest.mark.parametrize("acknowledged", [False, True])
async def test_a_websocket_message_of_the_wrong_shape_is_refused_as_its_protocol_says_without_a_trace(
    api: Api, world: World, caplog: pytest.LogCaptureFixture, acknowledged: bool
) -> None:
    url = api.base.replace("http://", "ws://") + "/graphql"
    init = json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {world.admin}"}})
    with caplog.at_level(logging.INFO):
        for shape in MALFORMED:
            for protocol, start in ((TRANSPORT_WS, "subscribe"), (LEGACY_WS, "start")):
                message = json.dumps(shape).replace('"START"', json.dumps(start))
                async with asyncio.timeout(SUBSCRIPTION_TIMEOUT), connect(url, subprotocols=[protocol]) as ws:
                    if acknowledged:
                        await ws.send(init)
                        assert (await next_message(ws))["type"] == "connection_ack"
                    await ws.send(message)
                    if protocol == TRANSPORT_WS:  # "a message of a format not specified": closed with 4400
                        with pytest.raises(ConnectionClosed):
                            await next_message(ws)
                        assert ws.close_code == 4400, message
                    else:  # subscriptions-transport-ws answers an error and keeps the connection
                        said = await next_message(ws)
                        assert said["type"] == "error", message
                        assert said["payload"]["extensions"]["code"] == "BAD_REQUEST"
                        if not acknowledged:
                            await ws.send(init)
                            assert (await next_message(ws))["type"] == "connection_ack"
                        await ws.send(json.dumps({"type": "start", "id": "ok", "payload": {"query": "{ __typename }"}}))
                        assert (await next_message(ws))["payload"] == {"data": {"__typename": "Query"}}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_websocket_that_never_initialises_is_closed_after_the_wait(database: str, redis_url: str, protocol: str) -> None:
    from graph.server.app import create_app

    app = create_app()
    view = next(route.endpoint for route in app.routes if isinstance(route, WebSocketRoute))
    view.connection_init_wait_timeout = timedelta(seconds=0.5)
    async with serving(app) as base, asyncio.timeout(SUBSCRIPTION_TIMEOUT):
        async with connect(base.replace("http://", "ws://") + "/graphql", subprotocols=[protocol]) as ws:
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
        assert ws.close_code == 4408
