"""OpenID Connect access tokens: check one, and find the operator it names.

Checked by PyJWT against the provider's key that the token's `kid` names (graph/auth/key_set.py),
with the algorithm the key fits; `iss` exactly the issuer, `aud` containing the audience,
`exp`, `nbf` and `iat` with the leeway. The operator is the active user of the tenant whose
slug the tenant claim holds, with the username the username claim holds. Whatever fails,
the answer is the same None (UNAUTHENTICATED to the caller); the log says why.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt

from graph.auth.key_set import ALGORITHMS, KeySet
from models import settings
from models.tenancy import User

log = logging.getLogger(__name__)

# Longer than any provider's access token: a bigger "token" is refused before it is parsed.
MAX_TOKEN_CHARS = 16 * 1024


def configuration_problem() -> str | None:
    """Why the OIDC settings cannot work, or None: every service refuses to start with one."""
    if settings.OIDC_ISSUER and not settings.OIDC_AUDIENCE:
        return (
            "UDT_OIDC_ISSUER is set but UDT_OIDC_AUDIENCE is not: set it to the audience your identity "
            "provider puts in the `aud` claim of access tokens for this API (or unset UDT_OIDC_ISSUER)"
        )
    return None


class Verifier:
    def __init__(
        self, issuer: str, audience: str, *, tenant_claim: str, username_claim: str, leeway: float
    ) -> None:
        self.issuer, self.audience, self.leeway = issuer, audience, leeway
        self.tenant_claim, self.username_claim = tenant_claim, username_claim
        self.keys = KeySet(issuer)

    @classmethod
    def from_settings(cls) -> Verifier | None:
        """The verifier the settings describe; None when OIDC is off."""
        if problem := configuration_problem():
            raise ValueError(problem)
        if not settings.OIDC_ISSUER:
            return None
        return cls(
            settings.OIDC_ISSUER, settings.OIDC_AUDIENCE, tenant_claim=settings.OIDC_TENANT_CLAIM,
            username_claim=settings.OIDC_USERNAME_CLAIM, leeway=settings.OIDC_LEEWAY_SECONDS,
        )

    async def claims(self, token: str) -> dict[str, Any] | None:
        """The token's claims when it passes every check; else None."""
        if len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            return _refused("unreadable header", exc)
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:  # before any key is looked up: `none` and HS256 never fetch
            return _refused(f"algorithm {algorithm!r} is not one of {sorted(ALGORITHMS)}")
        if not isinstance(kid, str):
            return _refused("no kid")
        key = await self.keys.key(kid, algorithm)
        if key is None:
            return _refused(f"no signing key {kid!r} for {algorithm}")
        try:
            return jwt.decode(
                token, key, algorithms=[algorithm], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return _refused("invalid", exc)

    async def operator(self, token: str) -> User | None:
        """The active user the token names, with their tenant; else None."""
        claims = await self.claims(token)
        if claims is None:
            return None
        tenant, username = claims.get(self.tenant_claim), claims.get(self.username_claim)
        if not (isinstance(tenant, str) and tenant and isinstance(username, str) and username):
            return _refused(f"no {self.tenant_claim!r} or {self.username_claim!r} claim")
        user = await User.filter(tenant__slug=tenant, username=username, active=True).select_related("tenant").first()
        return user if user is not None else _refused("no active user of that name in that tenant")


def _refused(why: str, exc: Exception | None = None) -> None:
    """Logged for whoever runs the service; the caller hears only UNAUTHENTICATED."""
    log.info("OpenID Connect token refused: %s%s", why, f" ({exc})" if exc else "")
