"""Per-request context: who is calling (bearer token -> operator) and the dataloaders.

On HTTP the token comes from the Authorization header: a POST's operator is
found on its headers before its body is read (graph/server/app.py) and handed over;
a GET's is resolved when first asked. On WebSocket the token comes from the
`connection_init` payload, which strawberry stores as `connection_params`
after the context exists, so the operator is resolved lazily, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import structlog
from arq.connections import ArqRedis
from starlette.requests import HTTPConnection

from graph.core.loaders import Loaders
from graph.live.fanout import Fanout
from models.tenancy import ApiToken, User

_UNSET: Any = object()
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


def _names_a_token(params: object) -> bool:
    return isinstance(params, dict) and any(isinstance(k, str) and k.lower() in _AUTH_KEYS for k in params)


def _named_in_log(operator: User | None) -> None:
    if operator is not None:  # every log line of this request names them
        structlog.contextvars.bind_contextvars(tenant=operator.tenant.slug, operator=operator.username)


async def operator_from_connection(conn: HTTPConnection) -> User | None:
    """The operator of a plain HTTP request, from its Authorization header (CSV downloads use it too)."""
    token = bearer_token(conn.headers.get("authorization"))
    operator = await ApiToken.authenticate(token) if token else None
    _named_in_log(operator)
    return operator


@dataclass
class Context:
    request: HTTPConnection
    response: Any
    pool: ArqRedis
    fanout: Fanout  # the API process's readers of event streams
    connection_params: dict[str, Any] | None = None
    _operator: Any = field(default=_UNSET, repr=False)

    def token(self) -> str | None:
        """The `connection_init` payload's token when it names one (even badly), else the header's."""
        if _names_a_token(self.connection_params):
            return token_from_params(self.connection_params)
        return bearer_token(self.request.headers.get("authorization"))

    def known(self, operator: User) -> None:
        """The operator already found on this request's headers: not looked up again."""
        self._operator = operator

    async def operator(self) -> User | None:
        if self._operator is _UNSET:
            token = self.token()
            self._operator = await ApiToken.authenticate(token) if token else None
            _named_in_log(self._operator)
        return self._operator

    async def still_authenticated(self) -> bool:
        """Whether the token is still live (not expired, not revoked) and still the same operator's.

        For long-lived subscriptions: the operator was resolved once, at the start.
        """
        operator = await self.operator()
        token = self.token()
        current = await ApiToken.authenticate(token) if token else None
        if current is None or operator is None or current.id != operator.id:
            return False
        self._operator = current  # permissions and view as they are now
        return True

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.operator)
