"""OpenID Connect access tokens on WebSockets: accepted at `connection_init` as API tokens are,
and a subscription opened with one ends at the token's `exp` (not exp + leeway), UNAUTHENTICATED."""

from __future__ import annotations

import asyncio
import time

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from graph.core.relay import to_global_id
from models import running, starting
from tests.conftest import Oidc
from tests.oidc_provider import VIEWER, with_claims
from tests.support import EVENTS, LEGACY_WS, TRANSPORT_WS, door


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_jwt_opens_a_websocket_in_either_payload_form_and_a_bad_one_is_refused(oidc: Oidc, protocol: str) -> None:
    token = oidc.token("lead")
    for payload in ({"Authorization": f"Bearer {token}"}, {"token": token}):
        messages, code, _ = await door(oidc.api, protocol, payload)
        assert messages == [{"type": "connection_ack"}] and code is None
    messages, code, _ = await door(oidc.api, protocol, {"Authorization": f"Bearer {with_claims(token, x=1)}"})
    if protocol == TRANSPORT_WS:
        assert (code, messages) == (4403, [])
    else:
        assert messages[0]["type"] == "connection_error"
    viewer = (await oidc.api.via(protocol, VIEWER, token))["viewer"]
    assert viewer["user"]["username"] == "lead"


async def test_a_subscription_opened_with_a_jwt_ends_unauthenticated_at_its_exp_whatever_the_leeway(oidc: Oidc) -> None:
    """The default 60 s leeway would accept the token until exp + 60 s; the subscription ends at exp
    (at the next look at its stream after it: within RECHECK_MS, 5 s), well within the 35 s promised."""
    world = oidc.world
    await world.stock(10)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)  # queued, and left so: no worker runs it
    exp = int(time.time()) + 6
    token = oidc.token("admin", exp=exp)
    received: list[str] = []
    try:
        with pytest.raises(TransportQueryError) as caught:
            async with asyncio.timeout(30), oidc.api.ws(token) as session:
                request = GraphQLRequest(EVENTS, variable_values={"id": to_global_id("Transfer", transfer.id)})
                async for result in session.subscribe(request):
                    received.append(result["transferEvents"]["type"])
        ended = time.time()
    finally:
        await running.cancel(transfer)
    assert received == ["SNAPSHOT"] and caught.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert exp <= ended < exp + 8  # at exp, not at exp + leeway (60 s), nor a 30 s re-check later
    assert (await oidc.api(VIEWER, token))["viewer"]  # the token itself is still accepted, within the leeway


async def test_a_subscription_cannot_start_with_a_jwt_past_its_exp_but_within_the_leeway(oidc: Oidc) -> None:
    world = oidc.world
    await world.stock(10)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)
    token = oidc.token("admin", exp=int(time.time()) - 5)
    try:
        with pytest.raises(TransportQueryError) as caught:
            await oidc.api.events(token, to_global_id("Transfer", transfer.id), timeout=20)
    finally:
        await running.cancel(transfer)
    assert caught.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
