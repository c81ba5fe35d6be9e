"""Signing in with a real identity provider: panva's oidc-provider (tests/identity_provider/), run
by node on a free port, as a deployment's Keycloak or Okta would be. Its tokens are got over HTTP
the way a script (client credentials with a resource indicator) and a browser front end
(Authorization Code with PKCE) get them, then used on the API.

Skipped, saying why, when node or the provider's node_modules are missing; UDT_REQUIRE_PROVIDER=1
(CI) makes that a failure instead.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.oidc_provider import REQUIRE_PROVIDER, VIEWER, api_trusting, identity_provider, provider_missing
from tests.support import TRANSPORT_WS, World

RESOURCE = "urn:udt:api"  # the resource indicator provider.js serves; its tokens' aud is udt-api
CONSOLE_REDIRECT = "http://127.0.0.1:5173/"

if (missing := provider_missing()) is not None and not REQUIRE_PROVIDER:
    pytestmark = pytest.mark.skip(reason=f"no real identity provider: {missing}")


@pytest.fixture
async def issuer(world: World) -> AsyncIterator[str]:
    """The provider's issuer URL; its tokens name this world's tenant."""
    async with identity_provider(world.tenant.slug, UDT_USERNAME="lead", CONSOLE_REDIRECT=CONSOLE_REDIRECT) as url:
        yield url


async def script_token(issuer: str) -> str:
    """A client-credentials access token for the API (a JWT: the resource server asks for one)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{issuer}/token", auth=("udt-script", "udt-script-secret"),
            data={"grant_type": "client_credentials", "resource": RESOURCE, "scope": "udt"},
        )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def console_token(issuer: str, username: str) -> str:
    """What a browser front end does: Authorization Code with PKCE, signing in as `username` on the
    provider's own (development) login page; no client secret."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": "udt-console", "response_type": "code", "redirect_uri": CONSOLE_REDIRECT, "scope": "openid profile",
        "resource": RESOURCE, "code_challenge": challenge, "code_challenge_method": "S256", "state": "s1",
    }
    async with httpx.AsyncClient() as browser:
        response = await browser.get(f"{issuer}/auth", params=query)
        for _ in range(10):
            location = response.headers.get("location")
            if location and location.startswith(CONSOLE_REDIRECT):
                break
            if location:
                response = await browser.get(urljoin(str(response.url), location))
                continue
            form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            assert form, response.text
            fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', response.text))
            if 'name="login"' in response.text:  # the login page takes any password
                fields.update(login=username, password="any")
            response = await browser.post(urljoin(str(response.url), form.group(1)), data=fields)
        params = parse_qs(urlsplit(location).query)
        assert params.get("state") == ["s1"], params
        token = await browser.post(f"{issuer}/token", data={
            "grant_type": "authorization_code", "code": params["code"][0], "redirect_uri": CONSOLE_REDIRECT,
            "client_id": "udt-console", "code_verifier": verifier, "resource": RESOURCE,
        })
    assert token.status_code == 200, token.text
    return token.json()["access_token"]


async def test_a_script_token_from_a_real_provider_works_over_http_websocket_and_the_csv_route(
    world: World, redis_url: str, issuer: str
) -> None:
    token = await script_token(issuer)
    async with api_trusting(issuer) as (api, _):
        viewer = (await api(VIEWER, token))["viewer"]
        assert viewer["user"]["username"] == "lead" and viewer["view"] == {"name": "East"}
        assert (await api.via(TRANSPORT_WS, VIEWER, token))["viewer"] == viewer
        async with httpx.AsyncClient(base_url=api.base) as client:
            csv = await client.get("/exports/people.csv", headers={"Authorization": f"Bearer {token}"})
        assert csv.status_code == 200 and csv.text.startswith("From User ID,")
        assert (await api(VIEWER, world.admin))["viewer"]["user"]["username"] == "admin"  # API tokens beside


async def test_a_browser_front_end_signs_in_with_authorization_code_and_pkce(world: World, redis_url: str, issuer: str) -> None:
    token = await console_token(issuer, "boss")
    async with api_trusting(issuer) as (api, _):
        viewer = (await api(VIEWER, token))["viewer"]
    assert viewer["user"]["username"] == "boss" and viewer["tenant"]["slug"] == world.tenant.slug


async def test_a_token_of_the_real_provider_for_another_audience_is_refused(world: World, redis_url: str, issuer: str) -> None:
    token = await script_token(issuer)
    async with api_trusting(issuer, OIDC_AUDIENCE="another-api") as (api, _):
        async with httpx.AsyncClient(base_url=api.base) as client:
            response = await client.post("/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 or response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
