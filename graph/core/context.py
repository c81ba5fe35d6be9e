"""Per-request context: who is calling (bearer token -> operator, graph/auth/bearer.py) and the dataloaders.

On HTTP the token comes from the Authorization header: a POST's operator is
found on its headers before its body is read (graph/server/app.py) and handed over;
a GET's is resolved when first asked. On WebSocket the token comes from the
`connection_init` payload, which strawberry stores as `connection_params`
after the context exists, so the operator is resolved lazily, once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import structlog
from arq.connections import ArqRedis
from starlette.requests import HTTPConnection

from graph.auth.bearer import authenticate, bearer_token, expires_at, names_a_token, token_from_params
from graph.auth.oidc import Verifier
from graph.core.loaders import Loaders
from graph.live.fanout import Fanout
from models.tenancy import User

_UNSET: Any = object()


def _oidc(conn: HTTPConnection) -> Verifier | None:
    """The app's OpenID Connect verifier (graph/server/app.py sets it), None when OIDC is off."""
    return conn.app.state.oidc


def _named_in_log(operator: User | None) -> None:
    if operator is not None:  # every log line of this request names them
        structlog.contextvars.bind_contextvars(tenant=operator.tenant.slug, operator=operator.username)


async def operator_from_connection(conn: HTTPConnection) -> User | None:
    """The operator of a plain HTTP request, from its Authorization header (CSV downloads use it too)."""
    operator = await authenticate(bearer_token(conn.headers.get("authorization")), _oidc(conn))
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
        if names_a_token(self.connection_params):
            return token_from_params(self.connection_params)
        return bearer_token(self.request.headers.get("authorization"))

    def known(self, operator: User) -> None:
        """The operator already found on this request's headers: not looked up again."""
        self._operator = operator

    async def operator(self) -> User | None:
        if self._operator is _UNSET:
            self._operator = await authenticate(self.token(), _oidc(self.request))
            _named_in_log(self._operator)
        return self._operator

    async def still_authenticated(self) -> bool:
        """Whether the token is still live (not expired, not revoked) and still the same operator's.

        For long-lived subscriptions: the operator was resolved once, at the start. A JWT ends
        at its `exp` here, without the leeway a request gets.
        """
        operator = await self.operator()
        token = self.token()
        ends = expires_at(token)
        if ends is not None and time.time() >= ends:
            return False
        current = await authenticate(token, _oidc(self.request))
        if current is None or operator is None or current.id != operator.id:
            return False
        self._operator = current  # permissions and view as they are now
        return True

    def access_ends(self) -> float | None:
        """When the token ends by itself (a JWT's `exp`, a Unix time): a subscription checks it then."""
        return expires_at(self.token())

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.operator)
