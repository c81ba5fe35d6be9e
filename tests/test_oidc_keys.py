"""The provider's key set as the API keeps it: cached, refetched for an unknown `kid` at most
once per 30 s, rotations picked up without a restart, and every request answered within a
second whatever the provider does (answers, hangs, or is down)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from graph.auth import key_set
from tests.conftest import Oidc
from tests.oidc_provider import VIEWER, Provider, api_trusting, reheaded, signed_in
from tests.processes import until
from tests.support import World

SECOND = 1.0  # every request is answered within this


async def timed(client: httpx.AsyncClient, token: str) -> tuple[int, float]:
    """The status of a viewer query with `token`, and how long its answer took."""
    started = time.monotonic()
    response = await client.post("/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"})
    status = 200 if response.status_code == 200 and "errors" not in response.json() else 401
    return status, time.monotonic() - started


def made_up(oidc: Oidc, n: int) -> str:
    """A token naming a key nobody published."""
    return reheaded(oidc.token("admin"), alg="RS256", kid=f"made-up-{n}")


async def test_a_flood_of_unknown_kids_makes_one_fetch_per_30_s_and_never_slows_a_valid_request(
    oidc: Oidc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider hangs on the refetch: the made-up kids wait for it at most WAIT_SECONDS,
    the valid tokens not at all; the provider sees one request."""
    assert oidc.provider.jwks_fetches == 1  # the fetch at start
    oidc.provider.hang()
    async with httpx.AsyncClient(base_url=oidc.api.base, timeout=30) as client:
        with monkeypatch.context() as patch:  # the first made-up kid need not wait 30 s after the start's fetch
            patch.setattr(key_set, "REFETCH_SECONDS", 0.0)
            assert (await timed(client, made_up(oidc, -1)))[0] == 401
        await until(lambda: oidc.provider.jwks_fetches == 2, timeout=10)  # the refetch, hanging from now on
        valid = oidc.token("lead")
        flood = [timed(client, made_up(oidc, n)) for n in range(40)]
        answers = await asyncio.gather(*flood, *(timed(client, valid) for _ in range(10)))
        assert [status for status, _ in answers] == [401] * 40 + [200] * 10
        assert max(seconds for _, seconds in answers) < SECOND, answers
        assert max(seconds for _, seconds in answers[40:]) < key_set.WAIT_SECONDS  # the valid never waited
        oidc.provider.release()
        again = await asyncio.gather(*(timed(client, made_up(oidc, n)) for n in range(40, 60)))
    assert [status for status, _ in again] == [401] * 20 and max(s for _, s in again) < SECOND
    assert oidc.provider.jwks_fetches == 2  # within 30 s of the last fetch: none more


async def test_a_rotated_key_is_picked_up_without_a_restart(oidc: Oidc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_set, "REFETCH_SECONDS", 1.0)  # not the test's 30 s to wait
    old = oidc.token("admin")
    oidc.provider.add_key("rsa-2", "RSA-2")
    oidc.provider.remove_key("rsa-1")
    new = oidc.provider.token("admin", oidc.world.tenant.slug, kid="rsa-2")
    assert (await signed_in(oidc.api, new, timeout=5))["user"]["username"] == "admin"
    async with httpx.AsyncClient(base_url=oidc.api.base) as client:
        assert (await timed(client, old))[0] == 401  # the retired key verifies nothing more
    assert oidc.provider.jwks_fetches <= 2 + 5  # at most one per REFETCH_SECONDS while it waited


@pytest.mark.parametrize("outage", ["down", "hanging"])
async def test_while_the_provider_is_out_cached_keys_work_and_a_new_kid_is_answered_within_a_second(
    oidc: Oidc, monkeypatch: pytest.MonkeyPatch, outage: str
) -> None:
    monkeypatch.setattr(key_set, "REFETCH_SECONDS", 0.0)  # every unknown kid tries the provider
    if outage == "down":
        await oidc.provider.go_down()
    else:
        oidc.provider.hang()
    async with httpx.AsyncClient(base_url=oidc.api.base, timeout=30) as client:
        for n in range(3):
            status, seconds = await timed(client, made_up(oidc, n))
            assert status == 401 and seconds < SECOND
            status, seconds = await timed(client, oidc.token("lead", kid=("rsa-1", "ec-1", "ed-1")[n]))
            assert status == 200 and seconds < SECOND


async def test_start_up_never_waits_for_a_provider_that_hangs(world: World, redis_url: str) -> None:
    async with Provider() as provider:
        provider.add_key("rsa-1", "RSA")
        provider.hang()
        started = time.monotonic()
        async with api_trusting(provider.issuer) as (api, _):
            assert time.monotonic() - started < 5 * SECOND  # uvicorn's start, not the provider's silence
            await until(lambda: provider.jwks_fetches == 1, timeout=10)  # asked, and still waiting
            provider.release()
            await signed_in(api, provider.token("admin", world.tenant.slug))


async def test_a_discovery_document_naming_another_issuer_is_not_trusted(world: World, redis_url: str) -> None:
    async with Provider() as provider:
        provider.add_key("rsa-1", "RSA")
        provider.claimed_issuer = "https://impostor.example.com"
        async with api_trusting(provider.issuer) as (api, _):
            async with httpx.AsyncClient(base_url=api.base) as client:
                status, _ = await timed(client, provider.token("admin", world.tenant.slug))
    assert status == 401 and provider.jwks_fetches == 0
