"""OpenID Connect access tokens as bearers: which the API accepts, and whom they name.

A provider served by the test over real HTTP (tests/oidc_provider.py) signs real tokens with real
keys; the API under test fetched its key set at start. Every refused token gets the same answer
as a bad API token: UNAUTHENTICATED, saying nothing of why.
"""

from __future__ import annotations

import time

import httpx
import pytest

from graph.core.errors import IsAuthenticated
from models.tenancy import User
from tests.conftest import Oidc
from tests.oidc_provider import AUDIENCE, VIEWER, Provider, api_trusting, hmac_signed, reheaded, signed_in, unsigned, with_claims
from tests.support import Api, GraphQLErrors, World

USERS = "{ users(first: 100) { totalCount edges { node { userId } } } }"


async def refused(api: Api, token: str) -> None:
    """`token` is answered exactly as a made-up API token is."""
    with pytest.raises(GraphQLErrors) as caught:
        await api(VIEWER, token)
    with pytest.raises(GraphQLErrors) as bad_api_token:
        await api(VIEWER, "udt_not-a-token")
    assert caught.value.errors == bad_api_token.value.errors
    assert caught.value.codes == ["UNAUTHENTICATED"] and caught.value.errors[0]["message"] == IsAuthenticated.message


@pytest.mark.parametrize(("kid", "algorithm"), [("rsa-1", "RS256"), ("rsa-1", "PS256"), ("ec-1", "ES256"), ("ed-1", "EdDSA")])
async def test_a_valid_token_signs_in_its_user_with_each_allowed_algorithm(oidc: Oidc, kid: str, algorithm: str) -> None:
    viewer = (await oidc.api(VIEWER, oidc.token("admin", kid=kid, algorithm=algorithm)))["viewer"]
    assert viewer == {
        "user": {"userId": 1, "username": "admin"}, "tenant": {"slug": oidc.world.tenant.slug}, "view": None,
        "canTransfer": True,
    }


async def test_an_audience_list_containing_the_audience_is_accepted(oidc: Oidc) -> None:
    token = oidc.token("admin", aud=["https://graph.example.com", AUDIENCE])
    assert (await oidc.api(VIEWER, token))["viewer"]["user"]["username"] == "admin"


# Times are seconds from when the test runs (not from collection, minutes earlier in a full run).
CLAIM_FAILURES = {
    "expired": {"exp": -120},  # past the 60 s leeway
    "not-yet-valid": {"nbf": 120},
    "issued-in-the-future": {"iat": 120},
    "wrong-issuer": {"iss": "https://elsewhere.example.com"},
    "wrong-audience": {"aud": "another-api"},
    "wrong-audiences": {"aud": ["another-api", "a-third"]},
    "no-exp": {"exp": None},  # never ends
    "no-aud": {"aud": None},
    "no-iss": {"iss": None},
    "issuer-prefix": {"iss": "http://127.0.0.1"},  # exactly the issuer or nothing
}
_TIMES = ("exp", "nbf", "iat")


@pytest.mark.parametrize("failure", list(CLAIM_FAILURES))
async def test_a_token_failing_a_claim_check_is_unauthenticated(oidc: Oidc, failure: str) -> None:
    now = int(time.time())
    claims = {k: now + v if k in _TIMES and v is not None else v for k, v in CLAIM_FAILURES[failure].items()}
    await refused(oidc.api, oidc.token("admin", **claims))
    assert (await oidc.api(VIEWER, oidc.token("admin")))["viewer"]["user"]["username"] == "admin"  # the same, unchanged


async def test_the_leeway_forgives_a_clock_a_little_behind(oidc: Oidc) -> None:
    """Expired 30 s ago, within the default 60 s."""
    token = oidc.token("admin", exp=int(time.time()) - 30)
    assert (await oidc.api(VIEWER, token))["viewer"]["user"]["username"] == "admin"


async def test_alg_none_is_refused_whatever_the_header_says(oidc: Oidc) -> None:
    claims = oidc.provider.claims("admin", oidc.world.tenant.slug)
    for alg in ("none", "None", "NONE"):
        await refused(oidc.api, unsigned({"alg": alg, "kid": "rsa-1", "typ": "JWT"}, claims))


async def test_hs256_signed_with_the_providers_public_key_is_refused(oidc: Oidc) -> None:
    """The classic confusion: the public key (as PEM, or as the JWK's modulus) used as an HMAC secret."""
    claims = oidc.provider.claims("admin", oidc.world.tenant.slug)
    key = oidc.provider.keys["rsa-1"]
    for alg in ("HS256", "HS384", "HS512"):
        for secret in (key.public_pem(), key.published["n"].encode()):
            await refused(oidc.api, hmac_signed({"alg": alg, "kid": "rsa-1", "typ": "JWT"}, claims, secret))


async def test_a_signature_under_a_header_naming_another_algorithm_is_refused(oidc: Oidc) -> None:
    """ec-1 is an EC key publishing alg ES256; rsa-1 an RSA key: neither verifies under another
    algorithm's name, whatever the token's header says."""
    await refused(oidc.api, reheaded(oidc.token("admin", kid="ec-1"), alg="RS256", kid="ec-1"))
    await refused(oidc.api, reheaded(oidc.token("admin", kid="rsa-1"), alg="EdDSA", kid="rsa-1"))
    await refused(oidc.api, reheaded(oidc.token("admin", kid="rsa-1"), alg="PS256", kid="rsa-1"))
    await refused(oidc.api, reheaded(oidc.token("admin", kid="rsa-1"), alg="RS256"))  # no kid


async def test_a_key_published_for_encryption_or_for_another_algorithm_verifies_nothing(world: World, redis_url: str) -> None:
    async with Provider() as provider:
        provider.add_key("sig", "RSA")
        provider.add_key("enc", "RSA-2", use="enc")
        provider.add_key("rs-only", "RSA-2", alg="RS256")
        async with api_trusting(provider.issuer) as (api, _):
            await signed_in(api, provider.token("admin", world.tenant.slug, kid="sig"))
            await refused(api, provider.token("admin", world.tenant.slug, kid="enc"))
            await refused(api, provider.token("admin", world.tenant.slug, kid="rs-only", algorithm="PS256"))
            assert (await api(VIEWER, provider.token("admin", world.tenant.slug, kid="rs-only")))["viewer"]


async def test_a_tampered_payload_is_refused(oidc: Oidc) -> None:
    token = oidc.token("lead")
    assert (await oidc.api(VIEWER, token))["viewer"]["user"]["username"] == "lead"
    await refused(oidc.api, with_claims(token, preferred_username="admin"))
    await refused(oidc.api, with_claims(token, exp=int(time.time()) + 10**6))


async def test_a_token_naming_an_unknown_tenant_or_user_or_an_inactive_user_is_unauthenticated(oidc: Oidc) -> None:
    await refused(oidc.api, oidc.token("admin", tenant="no-such-tenant"))
    await refused(oidc.api, oidc.token("nobody"))
    await refused(oidc.api, oidc.token("former40"))  # inactive
    await refused(oidc.api, oidc.token("admin", tenant=""))
    await refused(oidc.api, oidc.token(""))
    await refused(oidc.api, oidc.token("admin", udt_tenant=None))  # no tenant claim
    await refused(oidc.api, oidc.token("admin", preferred_username=None))
    await refused(oidc.api, oidc.token("admin", preferred_username=["admin"]))


async def test_a_user_deactivated_after_signing_in_is_unauthenticated_at_the_next_request(oidc: Oidc) -> None:
    token = oidc.token("boss")
    assert (await oidc.api(VIEWER, token))["viewer"]["user"]["username"] == "boss"
    await User.filter(id=oidc.world.pk(4)).update(active=False)
    await refused(oidc.api, token)


async def test_a_view_scoped_user_sees_only_their_view_as_with_an_api_token(oidc: Oidc) -> None:
    by_jwt = (await oidc.api(USERS, oidc.token("lead")))["users"]
    by_api_token = (await oidc.api(USERS, oidc.world.lead))["users"]
    seen = {e["node"]["userId"] for e in by_jwt["edges"]}
    assert by_jwt == by_api_token
    assert seen >= set(range(10, 30)) and not seen & set(range(30, 40))  # East, never West
    viewer = (await oidc.api(VIEWER, oidc.token("lead")))["viewer"]
    assert viewer["view"] == {"name": "East"} and viewer["canTransfer"] is True


async def test_api_tokens_keep_working_beside_jwts(oidc: Oidc) -> None:
    assert (await oidc.api(VIEWER, oidc.world.admin))["viewer"]["user"]["username"] == "admin"
    assert (await oidc.api(VIEWER, oidc.token("lead")))["viewer"]["user"]["username"] == "lead"
    await refused(oidc.api, "udt_not-a-token")


async def test_the_bearer_csv_route_takes_a_jwt(oidc: Oidc) -> None:
    async with httpx.AsyncClient(base_url=oidc.api.base) as client:
        ok = await client.get("/exports/people.csv", headers={"Authorization": f"Bearer {oidc.token('lead')}"})
        bad = await client.get("/exports/people.csv", headers={"Authorization": f"Bearer {with_claims(oidc.token('lead'), x=1)}"})
        clerk = await client.get("/exports/people.csv", headers={"Authorization": f"Bearer {oidc.token('clerk')}"})
    assert ok.status_code == 200 and ok.headers["content-disposition"] == 'attachment; filename="people.csv"'
    assert len(ok.text.splitlines()) == 1 + 20 + 5 + 1  # header, agents 10-29, former 40-44, boss (East)
    assert bad.status_code == 401 and bad.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert clerk.status_code == 403  # no transfer permission: the user's own permissions


async def test_a_jwt_is_unauthenticated_where_oidc_is_off(api: Api, oidc: Oidc) -> None:
    """The session's API has no issuer: a perfectly good token of another service's provider means nothing."""
    await refused(api, oidc.token("admin"))


async def test_a_huge_or_malformed_jwt_is_unauthenticated(oidc: Oidc) -> None:
    for token in ("a.b.c", "..", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 20_000 + ".a.b", oidc.token("admin") + "x" * 20_000):
        await refused(oidc.api, token)


async def test_a_download_link_asked_for_with_a_jwt_opens_as_a_plain_link(oidc: Oidc) -> None:
    """What a front end signed in with its provider offers: the link's query carries the JWT, the link nothing."""
    token = oidc.token("lead")
    link = (await oidc.api("{ viewer { peopleFileLink { url } } }", token))["viewer"]["peopleFileLink"]["url"]
    async with httpx.AsyncClient(base_url=oidc.api.base) as client:
        plain = await client.get(link)
        bearer = await client.get("/exports/people.csv", headers={"Authorization": f"Bearer {token}"})
    assert plain.status_code == 200 and plain.text == bearer.text
    assert token not in link
