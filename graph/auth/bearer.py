"""The bearer token of a request, and the operator it names.

A token comes from an `Authorization: Bearer` header or a WebSocket's `connection_init`
payload. A JWT (three dot-separated parts; API tokens never hold a dot) is checked as an
OpenID Connect access token when OIDC is on (graph/auth/oidc.py); anything else is an API token.
"""

from __future__ import annotations

import jwt

from graph.auth.oidc import Verifier
from models.tenancy import ApiToken, User

_AUTH_KEYS = ("authorization", "token")


def bearer_token(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def token_from_params(params: object) -> str | None:
    """`{"Authorization": "Bearer <token>"}` or `{"token": "<token>"}` (SPEC.md section 8)."""
    if not isinstance(params, dict):
        return None
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == "authorization":
            return bearer_token(value)
    token = params.get("token")
    return token if isinstance(token, str) and token else None


def names_a_token(params: object) -> bool:
    return isinstance(params, dict) and any(isinstance(k, str) and k.lower() in _AUTH_KEYS for k in params)


def is_jwt(token: str) -> bool:
    return token.count(".") == 2


async def authenticate(token: str | None, oidc: Verifier | None) -> User | None:
    """The operator a token names, with their tenant; None for no token, a bad one, or a JWT while OIDC is off."""
    if not token:
        return None
    if is_jwt(token):
        return await oidc.operator(token) if oidc is not None else None
    return await ApiToken.authenticate(token)


def expires_at(token: str | None) -> float | None:
    """When a JWT ends (its `exp`, a Unix time), read without checking: ask only about a token
    `authenticate` accepted. None for an API token, whose end the database knows."""
    if not token or not is_jwt(token):
        return None
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, (int, float)) else None
