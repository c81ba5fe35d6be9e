"""Per-request context: who is calling (bearer token -> operator) and the dataloaders.

On HTTP the token comes from the Authorization header; on WebSocket from the
`connection_init` payload, which strawberry stores as `connection_params`
after the context exists, so the operator is resolved lazily, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from arq.connections import ArqRedis
from starlette.requests import HTTPConnection

from graph.loaders import Loaders
from models.tenancy import ApiToken, User

_UNSET: Any = object()


def bearer_token(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def token_from_params(params: dict[str, Any] | None) -> str | None:
    """`{"Authorization": "Bearer <token>"}` or `{"token": "<token>"}` (SPEC.md section 8)."""
    if not isinstance(params, dict):
        return None
    for key, value in params.items():
        if key.lower() == "authorization" and isinstance(value, str):
            return bearer_token(value)
    token = params.get("token")
    return token if isinstance(token, str) and token else None


async def operator_from_connection(conn: HTTPConnection) -> User | None:
    """The operator of a plain HTTP request (CSV downloads use it too)."""
    token = bearer_token(conn.headers.get("authorization"))
    return await ApiToken.authenticate(token) if token else None


@dataclass
class Context:
    request: HTTPConnection
    response: Any
    pool: ArqRedis
    connection_params: dict[str, Any] | None = None
    _operator: Any = field(default=_UNSET, repr=False)

    async def operator(self) -> User | None:
        if self._operator is _UNSET:
            token = token_from_params(self.connection_params) or bearer_token(
                self.request.headers.get("authorization")
            )
            self._operator = await ApiToken.authenticate(token) if token else None
        return self._operator

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders()
