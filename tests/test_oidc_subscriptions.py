"""OpenID Connect access tokens on WebSockets: accepted at `connection_init` as API tokens are,
and a subscription opened with one ends at the token's `exp` (not exp + leeway), UNAUTHENTICATED."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from graph.api import transfer_events as subscription
from graph.core import context as request_context
from graph.core.relay import to_global_id
from models import running, starting
from models.tenancy import User
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


async def _watch_until_refused(oidc: Oidc, token: str, after_snapshot: Callable[[], Awaitable[None]]) -> tuple[list[str], str]:
    """Subscribe with `token` to a queued transfer that will not run, call `after_snapshot`, and
    return the event types received and the code of the error that ended the subscription."""
    world = oidc.world
    await world.stock(10)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)
    received: list[str] = []
    try:
        with pytest.raises(TransportQueryError) as caught:
            async with asyncio.timeout(30), oidc.api.ws(token) as session:
                request = GraphQLRequest(EVENTS, variable_values={"id": to_global_id("Transfer", transfer.id)})
                async for result in session.subscribe(request):
                    received.append(result["transferEvents"]["type"])
                    await after_snapshot()
    finally:
        await running.cancel(transfer)
    return received, caught.value.errors[0]["extensions"]["code"]


@pytest.fixture
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API runs in this process: check access every cycle, and cycle quickly."""
    monkeypatch.setattr(subscription, "ACCESS_RECHECK_SECONDS", 0)
    monkeypatch.setattr(subscription, "RECHECK_MS", 200)


async def test_a_subscription_ends_unauthenticated_once_its_jwt_names_another_user(oidc: Oidc, quick_checks: None) -> None:
    """A JWT names its user by tenant and username: when that name passes to someone else, the
    subscription ends rather than carry on as them (here a tenant admin, who would see it all)."""
    world = oidc.world

    async def pass_the_name_on() -> None:
        await User.filter(id=world.pk(2)).update(username="lead-before")
        await User.filter(id=world.pk(4)).update(username="lead")

    received, code = await _watch_until_refused(oidc, oidc.token("lead"), pass_the_name_on)
    assert (received, code) == (["SNAPSHOT"], "UNAUTHENTICATED")


async def test_a_jwt_is_over_at_its_exp_second_itself(oidc: Oidc, quick_checks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7519: the token must not be accepted "on or after" its exp."""
    exp = int(time.time()) + 100

    async def stop_the_clock_at_exp() -> None:
        monkeypatch.setattr(request_context, "time", SimpleNamespace(time=lambda: float(exp)))

    received, code = await _watch_until_refused(oidc, oidc.token("admin", exp=exp), stop_the_clock_at_exp)
    assert (received, code) == (["SNAPSHOT"], "UNAUTHENTICATED")
