"""Tokens have a life: they expire (90 days unless told), can be revoked, and note their last use.

An expired or revoked token is UNAUTHENTICATED at once, and a subscription
opened with it ends with UNAUTHENTICATED at its next access check.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from graph.api import transfer_events as subscription
from graph.core.relay import to_global_id
from jobs import transfer as transfer_jobs
from models import running, starting
from models.tenancy import DEFAULT_TOKEN_LIFETIME, ApiToken, TeamMember, User
from tests.support import EVENTS, LEGACY_WS, TRANSPORT_WS, Api, GraphQLErrors, World

VIEWER = "{ viewer { user { userId } } }"


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _token_row(token: str) -> ApiToken:
    return await ApiToken.get(token_hash=ApiToken.hash(token))


async def _refused(api: Api, token: str) -> list[str]:
    with pytest.raises(GraphQLErrors) as caught:
        await api(VIEWER, token)
    return caught.value.codes


async def test_a_new_token_expires_in_90_days_unless_told_otherwise(world: World) -> None:
    row = await _token_row(world.admin)
    assert row.expires_at is not None
    assert abs((row.expires_at - row.created_at) - DEFAULT_TOKEN_LIFETIME) < timedelta(seconds=5)
    forever = await ApiToken.issue(world.users[1], None)
    assert (await _token_row(forever)).expires_at is None
    assert (await ApiToken.authenticate(forever)).id == world.pk(1)


async def test_a_token_is_udt_and_256_random_bits_url_safe_so_secret_scanners_know_it(world: World) -> None:
    tokens = {await ApiToken.issue(world.users[1]) for _ in range(3)}
    assert len(tokens) == 3 and all(re.fullmatch(r"udt_[A-Za-z0-9_-]{43}", t) for t in tokens)


async def test_an_expired_token_is_unauthenticated_at_once(api: Api, world: World) -> None:
    assert (await api(VIEWER, world.admin))["viewer"]["user"]["userId"] == 1
    await ApiToken.filter(token_hash=ApiToken.hash(world.admin)).update(expires_at=_now() - timedelta(seconds=1))
    assert await _refused(api, world.admin) == ["UNAUTHENTICATED"]
    async with httpx.AsyncClient() as client:
        people = await client.get(f"{api.base}/exports/people.csv", headers={"Authorization": f"Bearer {world.admin}"})
    assert people.status_code == 401


async def test_a_revoked_token_is_unauthenticated_at_once_and_other_tokens_keep_working(api: Api, world: World) -> None:
    second = await ApiToken.issue(world.users[1])
    row = await _token_row(world.admin)
    assert await ApiToken.revoke(row.id) is True
    assert await ApiToken.revoke(row.id) is False  # once is enough
    assert await _refused(api, world.admin) == ["UNAUTHENTICATED"]
    assert (await api(VIEWER, second))["viewer"]["user"]["userId"] == 1


async def test_a_token_with_odd_characters_is_unauthenticated_without_internal_text(api: Api, world: World) -> None:
    for token in ("udt_\xe9\xe8", "udt_" + "a" * 5000, world.admin + "'--", "udt_ x"):
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{api.base}/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}".encode("latin-1")}
            )
        assert response.status_code == 401
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED" and "Traceback" not in response.text


async def test_last_use_is_noted_at_most_once_a_minute(api: Api, world: World) -> None:
    assert (await _token_row(world.lead)).last_used_at is None
    await api(VIEWER, world.lead)
    first = (await _token_row(world.lead)).last_used_at
    assert first is not None and _now() - first < timedelta(minutes=1)
    assert (await _token_row(world.admin)).last_used_at is None  # only the token used
    await api(VIEWER, world.lead)
    assert (await _token_row(world.lead)).last_used_at == first  # no second write within the minute
    earlier = _now() - timedelta(minutes=2)
    await ApiToken.filter(token_hash=ApiToken.hash(world.lead)).update(last_used_at=earlier)
    await api(VIEWER, world.lead)
    assert (await _token_row(world.lead)).last_used_at > earlier + timedelta(minutes=1)


async def test_requests_that_read_a_token_at_once_note_its_use_once(world: World) -> None:
    """Both read the token before either notes the use: the second write finds it noted and leaves it."""
    first_request, second_request = await _token_row(world.lead), await _token_row(world.lead)
    await first_request._touch()
    noted = (await _token_row(world.lead)).last_used_at
    assert noted is not None
    await second_request._touch()
    assert (await _token_row(world.lead)).last_used_at == noted


async def _watch_until_refused(
    api: Api, world: World, token: str, protocol: str, end_access: Callable[[], Awaitable[None]], in_handshake: bool = False
) -> tuple[list[str], dict]:
    """Subscribe to a queued transfer that will not run, end access after the SNAPSHOT, and
    return the event types received and the error that ended the subscription."""
    await world.stock(10)
    transfer, problems = await starting.start_single(world.users[1], 10, 11)  # queued, never enqueued
    assert problems == []
    received: list[str] = []
    try:
        with pytest.raises(TransportQueryError) as caught:
            async with api.ws(token, protocol, in_handshake=in_handshake) as session:
                request = GraphQLRequest(EVENTS, variable_values={"id": to_global_id("Transfer", transfer.id)})
                async with asyncio.timeout(30):
                    async for result in session.subscribe(request):
                        received.append(result["transferEvents"]["type"])
                        await end_access()
    finally:
        await running.cancel(transfer)
    return received, caught.value.errors[0]


@pytest.fixture
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server runs in this process: check access every cycle, and cycle quickly."""
    monkeypatch.setattr(subscription, "ACCESS_RECHECK_SECONDS", 0)
    monkeypatch.setattr(subscription, "RECHECK_MS", 200)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_open_subscription_ends_unauthenticated_when_its_token_is_revoked(
    api: Api, world: World, quick_checks: None, protocol: str
) -> None:
    row = await _token_row(world.admin)

    async def revoke() -> None:
        await ApiToken.revoke(row.id)

    received, error = await _watch_until_refused(api, world, world.admin, protocol, revoke)
    assert received == ["SNAPSHOT"] and error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_subscription_whose_token_came_in_the_handshake_header_is_rechecked_by_that_token(
    api: Api, world: World, quick_checks: None
) -> None:
    """No token in `connection_init`: the upgrade request's Authorization header is the one checked."""
    row = await _token_row(world.admin)

    async def revoke() -> None:
        await ApiToken.revoke(row.id)

    received, error = await _watch_until_refused(api, world, world.admin, TRANSPORT_WS, revoke, in_handshake=True)
    assert received == ["SNAPSHOT"] and error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_open_subscription_ends_unauthenticated_when_its_token_expires(
    api: Api, world: World, quick_checks: None
) -> None:
    async def expire() -> None:
        await ApiToken.filter(token_hash=ApiToken.hash(world.admin)).update(expires_at=_now())

    received, error = await _watch_until_refused(api, world, world.admin, TRANSPORT_WS, expire)
    assert received == ["SNAPSHOT"] and error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_open_subscription_ends_when_the_transfer_leaves_the_operators_view(
    api: Api, world: World, quick_checks: None
) -> None:
    west = (await TeamMember.get(user_id=world.pk(30))).team_id

    async def move_source_to_west() -> None:
        await TeamMember.filter(user_id=world.pk(10)).update(team_id=west)

    received, error = await _watch_until_refused(api, world, world.lead, TRANSPORT_WS, move_source_to_west)
    assert received == ["SNAPSHOT"] and error["extensions"]["code"] == "NOT_FOUND"


async def test_an_open_subscription_ends_forbidden_when_its_operator_loses_the_transfer_permission(
    api: Api, world: World, quick_checks: None
) -> None:
    async def take_permission() -> None:
        await User.filter(id=world.pk(2)).update(can_transfer=False)

    received, error = await _watch_until_refused(api, world, world.lead, TRANSPORT_WS, take_permission)
    assert received == ["SNAPSHOT"] and error["extensions"]["code"] == "FORBIDDEN"


async def test_an_open_subscription_ends_when_its_operator_is_given_another_view(
    api: Api, world: World, quick_checks: None
) -> None:
    """The transfer stays where it was; the operator's view is what changed."""

    async def move_operator_to_west() -> None:
        await User.filter(id=world.pk(2)).update(view_id=world.views["West"].id)

    received, error = await _watch_until_refused(api, world, world.lead, TRANSPORT_WS, move_operator_to_west)
    assert received == ["SNAPSHOT"] and error["extensions"]["code"] == "NOT_FOUND"


async def test_a_subscription_with_a_live_token_runs_to_its_end_through_the_access_checks(
    api: Api, world: World, quick_checks: None, pool
) -> None:
    await world.stock(10)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)
    received: list[str] = []
    async with api.ws(world.lead) as session:
        request = GraphQLRequest(EVENTS, variable_values={"id": to_global_id("Transfer", transfer.id)})
        async with asyncio.timeout(30):
            async for result in session.subscribe(request):
                received.append(result["transferEvents"]["type"])
                if received == ["SNAPSHOT"]:
                    await transfer_jobs.enqueue(pool, transfer)
    assert received == ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "SUCCEEDED"]


async def test_a_revoked_token_starts_no_new_subscription_on_a_connection_opened_before(api: Api, world: World) -> None:
    await world.stock(10)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)
    await running.cancel(transfer)
    request = GraphQLRequest(EVENTS, variable_values={"id": to_global_id("Transfer", transfer.id)})
    async with api.ws(world.admin) as session:
        assert [r["transferEvents"]["type"] async for r in session.subscribe(request)] == ["SNAPSHOT", "CANCELLED"]
        await ApiToken.revoke((await _token_row(world.admin)).id)
        with pytest.raises(TransportQueryError) as caught:
            async for _ in session.subscribe(request):
                pass
    assert caught.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
