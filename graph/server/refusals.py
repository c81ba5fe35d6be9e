"""Refusals at the HTTP edge, shaped like any GraphQL error: `{"errors": [{"message", "extensions": {"code"}}]}`.

Everything the service answers is JSON except the CSV files, /metrics and the GraphiQL page:
Starlette's own refusals (no such path, a method a route does not take) and a route's
unexpected failure come here too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from graph.core.errors import UNAVAILABLE_MESSAGE, CanTransfer, IsAuthenticated, current_request_id
from graph.fences.strawberry import HTTPException as ViewRefusal
from models.db import is_transient

log = logging.getLogger(__name__)

CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
}
# Tells the server to close the connection after the answer: a body left unread is never read.
CLOSE = {"Connection": "close"}


class BadRequest(ViewRefusal):
    """A request strawberry's view refuses (raised on the way in): 400 unless told."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(status_code, reason)


def error_response(
    status_code: int, message: str, code: str, headers: Mapping[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    """A refused HTTP request, shaped like any GraphQL error."""
    body = {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    return JSONResponse(body, status_code, headers=dict(headers or {}))


def unauthenticated(headers: Mapping[str, str] | None = None) -> JSONResponse:
    """401 with `WWW-Authenticate: Bearer` (RFC 6750), as GitHub's GraphQL API answers: a front end's
    "sign in again" hook keys on the status."""
    log.info("UNAUTHENTICATED: %s", IsAuthenticated.message)
    return error_response(
        401, IsAuthenticated.message, "UNAUTHENTICATED", headers={"WWW-Authenticate": "Bearer", **(headers or {})}
    )


def forbidden() -> JSONResponse:
    log.info("FORBIDDEN: %s", CanTransfer.message)
    return error_response(403, CanTransfer.message, "FORBIDDEN")


# Seconds a client may wait before trying again while the database is away: the service
# checks for it at least once a second (models/db.py), and most outages are a restart.
RETRY_AFTER_SECONDS = 5


def unavailable(request_id: str) -> JSONResponse:
    """The database is away (a restart, a failover) or busy (models/db.py's `is_transient`): nothing
    was done, and asking again will work, so this is not the server's fault to trace but a 503 to retry."""
    log.warning("SERVICE_UNAVAILABLE: the database is unavailable or busy, requestId=%s", request_id)
    return error_response(
        503, UNAVAILABLE_MESSAGE, "SERVICE_UNAVAILABLE", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, requestId=request_id
    )


def internal_error(request_id: str) -> JSONResponse:
    """The server's fault: no word of it to the caller, only the ID its trace is logged under."""
    return error_response(500, "Internal server error.", "INTERNAL_ERROR", requestId=request_id)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A route's unexpected exception (Starlette's last handler): uvicorn logs its trace, with the request ID."""
    if is_transient(exc):
        return unavailable(current_request_id())
    return internal_error(current_request_id())


def _message(request: Request, status_code: int, headers: Mapping[str, str]) -> str:
    if status_code == 404:
        return "There is nothing at this path."
    if status_code == 405:
        return f"This path does not take {request.method} requests; it takes {headers.get('Allow', 'other methods')}."
    return "The request was refused."


async def starlette_refusal(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTPException (an unknown path, a wrong method, a missing static file) as a JSON error."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # Starlette lists a route's methods from a set: in a stable order here
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    code = CODES.get(exc.status_code, "BAD_REQUEST")
    return error_response(exc.status_code, _message(request, exc.status_code, headers), code, headers=headers)
