"""The identity provider's signing keys: found by discovery, fetched from its JWKS, cached.

A token names its key by `kid`. A cached key answers at once. An unknown `kid` may mean
the provider rotated its keys, so it starts one refetch, at most once per REFETCH_SECONDS
whoever asks (a flood of made-up `kid`s costs the provider one request per period), and
the requests that asked wait for it at most WAIT_SECONDS: the fetch goes on in the
background. A fetch that fails leaves the cached keys as they were, so tokens they signed
keep working while the provider is down. Every fetch is httpx's async client: nothing
here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

import httpx
from jwt import PyJWK, PyJWTError

log = logging.getLogger(__name__)

# The only algorithms a token may use, whatever its header says: asymmetric, never `none` or HMAC.
ALGORITHMS = frozenset({"RS256", "PS256", "ES256", "EdDSA"})
# Which of them fit a key, by its type and curve: a token's `alg` must fit its key (no confusion).
_FITTING = {
    ("RSA", None): {"RS256", "PS256"},
    ("EC", "P-256"): {"ES256"},
    ("OKP", "Ed25519"): {"EdDSA"},
}
REFETCH_SECONDS = 30.0
# How long a request with an unknown `kid` waits for the refetch: well under the second every request gets.
WAIT_SECONDS = 0.5
# A fetch that takes longer is given up (it runs in the background; the cache stays as it was).
FETCH_TIMEOUT_SECONDS = 10.0


class KeySetError(ValueError):
    """The provider answered, but not with what discovery or a key set must hold."""


def fitting_algorithms(jwk: dict[str, Any]) -> set[str]:
    """The algorithms a JWK may verify: none for an encryption key (`use: enc`, or `key_ops`
    without `verify`); else those fitting its type, narrowed to its own `alg` when it names one."""
    if jwk.get("use", "sig") != "sig":
        return set()
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return set()
    kty, crv = jwk.get("kty"), jwk.get("crv")
    fits = set(_FITTING.get((kty, None if kty == "RSA" else crv), ()))
    if "alg" in jwk:
        fits &= {jwk["alg"]}
    return fits & ALGORITHMS


class KeySet:
    """One issuer's signing keys. `start` warms the cache in the background; `key` finds one."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._keys: dict[str, dict[str, Any]] = {}  # kid -> its JWK
        self._bound: dict[tuple[str, str], PyJWK] = {}  # (kid, alg) -> the key, bound to that algorithm
        self._jwks_uri: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._fetch_started = -math.inf

    def start(self) -> None:
        """Fetch the keys in the background: start-up never waits for the provider."""
        self._refetch()

    async def close(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetch
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def key(self, kid: str, algorithm: str) -> PyJWK | None:
        """The key `kid` bound to `algorithm`, or None: unknown (after a refetch, if one may
        start now or is under way), or `algorithm` does not fit it."""
        if kid not in self._keys:
            fetch = self._refetch()
            if fetch is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(fetch), WAIT_SECONDS)
        jwk = self._keys.get(kid)
        if jwk is None or algorithm not in fitting_algorithms(jwk):
            return None
        bound = self._bound.get((kid, algorithm))
        if bound is None:
            try:
                bound = self._bound[(kid, algorithm)] = PyJWK(jwk, algorithm)
            except PyJWTError as exc:
                log.warning("The identity provider's key %r cannot be used with %s: %s", kid, algorithm, exc)
                return None
        return bound

    def _refetch(self) -> asyncio.Task[None] | None:
        """The fetch under way, or a new one if the last began REFETCH_SECONDS ago; else None."""
        if self._fetch is not None and not self._fetch.done():
            return self._fetch
        if time.monotonic() - self._fetch_started < REFETCH_SECONDS:
            return None
        self._fetch_started = time.monotonic()
        self._fetch = asyncio.create_task(self._load(), name="oidc-key-set")
        return self._fetch

    async def _load(self) -> None:
        try:
            if self._jwks_uri is None:
                self._jwks_uri = await self._discover()
            keys = await self._key_set(self._jwks_uri)
        except (httpx.HTTPError, ValueError) as exc:  # KeySetError and JSON errors are ValueErrors
            self._jwks_uri = None  # discover again next time: the provider may have moved its keys
            log.warning("Could not fetch the identity provider's keys (%s): %s; the cached keys stay in use",
                        self.discovery_url, str(exc) or type(exc).__name__)
            return
        self._keys, self._bound = keys, {}
        log.info("Fetched the identity provider's signing keys: %s", ", ".join(sorted(keys)))

    async def _get(self, url: str) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS)
        response = await self._client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    async def _discover(self) -> str:
        document = await self._get(self.discovery_url)
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            found = document.get("issuer") if isinstance(document, dict) else None
            raise KeySetError(f"the discovery document names the issuer {found!r}, not {self.issuer!r}")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise KeySetError("the discovery document has no jwks_uri")
        return uri

    async def _key_set(self, uri: str) -> dict[str, dict[str, Any]]:
        document = await self._get(uri)
        listed = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(listed, list):
            raise KeySetError(f"{uri} is not a JWK set")
        keys = {
            k["kid"]: k for k in listed
            if isinstance(k, dict) and isinstance(k.get("kid"), str) and fitting_algorithms(k)
        }
        if not keys:
            raise KeySetError(f"{uri} holds no signing key with a kid for {', '.join(sorted(ALGORITHMS))}")
        return keys
