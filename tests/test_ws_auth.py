"""WebSocket auth at the door: a connection without a live token is refused at `connection_init`.

graphql-transport-ws closes with 4403 (Forbidden); the older graphql-ws answers
`connection_error`. Either way before any subscription, and with no internal text.
"""

from __future__ import annotations

import json

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportError

from models.tenancy import ApiToken
from tests.support import EVENTS, LEGACY_WS, START, TRANSPORT_WS, Api, World, door

INTERNAL = ("Traceback", "Error:", "Exception", "File \"", "sqlite", "SELECT")

# connection_init payloads that must be refused: no token, a wrong one, odd characters,
# a wrong shape, or a token under a key it may not be under.
BAD_PAYLOADS = [
    {},
    {"Authorization": "Bearer udt_not-a-token"},
    {"token": "udt_not-a-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": 12},
    {"Authorization": ["Bearer", "udt_x"]},
    {"token": {"value": "udt_x"}},
    {"token": "udt_\ud800\u0000"},
    {"Authorization": "Bearer udt_" + "é" * 50},
    {"token": "udt_" + "a" * 100_000},
    {"headers": {"Authorization": "Bearer udt_x"}},
]


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=range(len(BAD_PAYLOADS)))
async def test_graphql_transport_ws_closes_4403_at_connection_init_without_a_live_token(
    api: Api, world: World, payload: dict
) -> None:
    messages, code, reason = await door(api, TRANSPORT_WS, payload)
    assert messages == [] and code == 4403 and reason == "Forbidden"


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=range(len(BAD_PAYLOADS)))
async def test_graphql_ws_answers_connection_error_at_connection_init_without_a_live_token(
    api: Api, world: World, payload: dict
) -> None:
    messages, code, _ = await door(api, LEGACY_WS, payload)
    assert messages == [
        {
            "type": "connection_error",
            "payload": {"code": "UNAUTHENTICATED", "message": "A valid token is required in the connection_init payload."},
        }
    ]
    assert code is not None


async def test_a_payload_that_is_not_an_object_is_refused_without_internal_text(api: Api, world: World) -> None:
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        for payload in ("Bearer " + world.admin, [world.admin], 42):
            messages, code, reason = await door(api, protocol, payload)
            assert code is not None and all(m["type"] == "connection_error" for m in messages)
            assert not any(marker in reason + json.dumps(messages) for marker in INTERNAL)


async def test_a_revoked_or_expired_token_is_refused_at_thedoor(api: Api, world: World) -> None:
    from datetime import datetime, timedelta, timezone

    await ApiToken.filter(token_hash=ApiToken.hash(world.lead)).update(revoked_at=datetime.now(timezone.utc))
    await ApiToken.filter(token_hash=ApiToken.hash(world.admin)).update(
        expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)
    )
    for token in (world.lead, world.admin):
        assert (await door(api, TRANSPORT_WS, {"Authorization": f"Bearer {token}"}))[1:] == (4403, "Forbidden")
        assert (await door(api, LEGACY_WS, {"token": token}))[0][0]["type"] == "connection_error"


async def test_a_live_token_is_acknowledged_on_both_protocols_in_either_form(api: Api, world: World) -> None:
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        for payload in ({"Authorization": f"Bearer {world.admin}"}, {"authorization": f"bearer {world.admin}"}, {"token": world.admin}):
            messages, code, _ = await door(api, protocol, payload)
            assert messages == [{"type": "connection_ack"}] and code is None


async def test_the_gql_client_fails_to_connect_with_a_bad_token_and_subscribes_with_a_good_one(api: Api, world: World) -> None:
    await world.stock(10)
    started = (await api(START, world.admin, s=10, t=11, confirm=True))["startTransfer"]["transfer"]
    await api.wait_finished(world.admin, started["id"])
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        with pytest.raises(TransportError):
            async with api.ws("udt_not-a-token", protocol) as session:
                await session.execute(GraphQLRequest(EVENTS, variable_values={"id": started["id"]}))
        received = await api.events(world.admin, started["id"], protocol=protocol)
        assert [e["type"] for e in received] == ["SNAPSHOT", "SUCCEEDED"]
