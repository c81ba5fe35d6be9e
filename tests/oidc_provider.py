"""An OpenID Connect provider as the service meets one: discovery and a key set over real HTTP
on a free port, real RSA, EC and Ed25519 keys (cryptography), and access tokens minted with PyJWT.

It counts the key set's fetches, can rotate its keys, hang (answer nothing), or go down.

And the real one, tests/identity_provider (panva's oidc-provider run by node), for the tests
that sign in as a browser does: `identity_provider`, skipped without node unless
UDT_REQUIRE_PROVIDER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support import Api, GraphQLErrors, free_port, serving

AUDIENCE = "udt-api"
# One private key per kind: generating RSA keys costs tens of milliseconds each.
_PRIVATE = {
    "RSA": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "RSA-2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "EC": ec.generate_private_key(ec.SECP256R1()),
    "OKP": ed25519.Ed25519PrivateKey.generate(),
}
_TO_JWK = {"RSA": RSAAlgorithm, "RSA-2": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}
DEFAULT_ALGORITHM = {"RSA": "RS256", "RSA-2": "RS256", "EC": "ES256", "OKP": "EdDSA"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Key:
    kid: str
    kind: str  # a key of _PRIVATE
    published: dict[str, Any]  # its JWK as the key set shows it

    @property
    def private(self) -> Any:
        return _PRIVATE[self.kind]

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class Provider:
    def __init__(self) -> None:
        self.keys: dict[str, Key] = {}
        self.jwks_fetches = 0
        self.hanging = False
        self._released = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self.issuer = ""
        self.claimed_issuer = ""  # what discovery says the issuer is, when not the truth

    def add_key(self, kid: str, kind: str = "RSA", **jwk: Any) -> Key:
        """Publish a key; `jwk` adds or replaces members of its JWK (alg, use, ...). None removes one."""
        published = {**_TO_JWK[kind].to_jwk(_PRIVATE[kind].public_key(), as_dict=True), "kid": kid, "use": "sig"}
        published.update(jwk)
        key = self.keys[kid] = Key(kid, kind, {k: v for k, v in published.items() if v is not None})
        return key

    def remove_key(self, kid: str) -> None:
        del self.keys[kid]

    async def __aenter__(self) -> Provider:
        app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
        ])
        self.issuer = await self._stack.enter_async_context(serving(app))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        await self._stack.aclose()

    async def go_down(self) -> None:
        """Stop serving: the port refuses connections from now on."""
        self.release()
        await self._stack.aclose()

    def hang(self) -> None:
        """From now on, requests for the key set get no answer until `release`."""
        self.hanging, self._released = True, asyncio.Event()

    def release(self) -> None:
        self.hanging = False
        self._released.set()

    async def _discovery(self, request: Request) -> JSONResponse:
        return JSONResponse({"issuer": self.claimed_issuer or self.issuer, "jwks_uri": f"{self.issuer}/jwks"})

    async def _jwks(self, request: Request) -> JSONResponse:
        self.jwks_fetches += 1
        if self.hanging:
            await self._released.wait()
        return JSONResponse({"keys": [k.published for k in self.keys.values()]})

    def claims(self, username: str, tenant: str, lifetime: float = 300, **claims: Any) -> dict[str, Any]:
        at = int(time.time())
        return {
            "iss": self.issuer, "aud": AUDIENCE, "sub": f"{tenant}/{username}", "iat": at, "exp": at + lifetime,
            "udt_tenant": tenant, "preferred_username": username, **claims,
        }

    def token(self, username: str, tenant: str, kid: str = "rsa-1", algorithm: str | None = None, **claims: Any) -> str:
        """An access token signed by key `kid` (known to this provider); `claims` override the usual
        ones, and a claim given as None is left out."""
        key = self.keys[kid]
        payload = {k: v for k, v in self.claims(username, tenant, **claims).items() if v is not None}
        return jwt.encode(payload, key.private, algorithm=algorithm or DEFAULT_ALGORITHM[key.kind], headers={"kid": kid})


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token with `alg: none` (or whatever `header` says) and an empty signature."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A token HMAC-signed with `secret` (PyJWT refuses a PEM as an HMAC secret; an attacker does not)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def reheaded(token: str, **header: Any) -> str:
    """`token` with another header and its signature kept (forged)."""
    _, payload, signature = token.split(".")
    return f"{b64(json.dumps(header).encode())}.{payload}.{signature}"


def with_claims(token: str, **changes: Any) -> str:
    """`token` with its payload changed and its signature kept (tampered)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64(json.dumps({**claims, **changes}).encode())}.{signature}"


@contextlib.asynccontextmanager
async def provider_with_keys() -> AsyncIterator[Provider]:
    """A provider publishing one key of each kind: rsa-1 (no `alg`, as Entra ID publishes), ec-1, ed-1."""
    async with Provider() as provider:
        provider.add_key("rsa-1", "RSA")
        provider.add_key("ec-1", "EC", alg="ES256")
        provider.add_key("ed-1", "OKP")
        yield provider


@contextlib.asynccontextmanager
async def api_trusting(issuer: str, port: int | None = None, **settings_: Any) -> AsyncIterator[tuple[Api, Starlette]]:
    """An API of its own (no worker: the session's app has one) with OpenID Connect on, trusting
    `issuer`, on `port` if given; `settings_` override the OIDC settings it is built with."""
    from graph.server.app import create_app
    from models import settings

    values = {"OIDC_ISSUER": issuer, "OIDC_AUDIENCE": AUDIENCE, **settings_}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setattr(settings, name, value)
        app = create_app()
    async with serving(app, port=port) as base:
        yield Api(base), app


async def signed_in(api: Api, token: str, timeout: float = 10) -> dict:
    """The viewer, once `token` is accepted (the key set is fetched in the background at start)."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(GraphQLErrors):
                return (await api(VIEWER, token))["viewer"]
            await asyncio.sleep(0.05)


VIEWER = "{ viewer { user { userId username } tenant { slug } view { name } canTransfer } }"


PROVIDER_DIR = Path(__file__).resolve().parent / "identity_provider"
REQUIRE_PROVIDER = os.environ.get("UDT_REQUIRE_PROVIDER") == "1"


def provider_missing() -> str | None:
    """Why the real provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return "the provider is not installed: npm ci --prefix tests/identity_provider"
    return None


@contextlib.asynccontextmanager
async def identity_provider(tenant: str, **env: str) -> AsyncIterator[str]:
    """tests/identity_provider on a free port, its tokens naming `tenant`; `env` sets the rest of
    provider.js's settings (UDT_USERNAME, CONSOLE_REDIRECT, ...). Yields its issuer URL once its
    discovery answers."""
    if (why := provider_missing()) is not None:
        pytest.fail(f"UDT_REQUIRE_PROVIDER=1 but {why}")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        "node", "provider.js", cwd=PROVIDER_DIR, env={**os.environ, "PORT": str(port), "UDT_TENANT": tenant, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(30), httpx.AsyncClient() as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/.well-known/openid-configuration")).status_code == 200:
                        break
                if process.returncode is not None:
                    pytest.fail(f"the provider stopped: {(await process.stdout.read()).decode()}")  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
