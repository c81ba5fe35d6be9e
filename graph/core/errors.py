"""Errors callers can act on: `userErrors` entries and GraphQL error codes.

Bad input of a mutation is a `UserError` in its payload (stable code, message,
field path). Not being allowed at all, or a request over a limit, is a GraphQL
error whose `extensions.code` says why (UNAUTHENTICATED, FORBIDDEN, ...).
Anything else that goes wrong is the server's fault: the caller sees only
INTERNAL_ERROR and a request ID, and the log has the trace under that ID.
Every error the caller sees carries a code: graphql-core's own refusals
get Apollo Server's names (GRAPHQL_PARSE_FAILED, BAD_USER_INPUT; validation's
GRAPHQL_VALIDATION_FAILED is given in graph/execution/documents.py), with their messages.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import strawberry
from asgi_correlation_id import correlation_id
from graphql import GraphQLError
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.permission import BasePermission

from models.db import is_transient
from models.rules import Problem

log = logging.getLogger(__name__)


@strawberry.type(description="Why a mutation did nothing (or a row or file is refused). Nothing changed.")
class UserError:
    code: str = strawberry.field(description="Stable code to act on, e.g. SAME_USER or TARGET_INACTIVE.")
    message: str = strawberry.field(description="Says what is wrong, for a person.")
    field: list[str] | None = strawberry.field(
        default=None, description='Path of the input it is about, e.g. ["input", "targetUserId"]; null: no one input.'
    )


def user_error(problem: Problem, fields: dict[str, list[str]] | None = None) -> UserError:
    """A rule's problem as a UserError; `fields` maps its role (source/target) to an input path."""
    path = (fields or {}).get(problem.role) if problem.role else None
    return UserError(code=problem.code, message=problem.message, field=path)


def user_errors(problems: list[Problem], fields: dict[str, list[str]] | None = None) -> list[UserError]:
    return [user_error(p, fields) for p in problems]


class IsAuthenticated(BasePermission):
    message = "A valid bearer token is required (Authorization: Bearer <token>)."
    error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return await info.context.operator() is not None


class CanTransfer(BasePermission):
    message = "You do not have the permission to transfer user data."
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        operator = await info.context.operator()
        return operator is not None and operator.may_transfer


AUTHENTICATED = [IsAuthenticated]
TRANSFERS = [IsAuthenticated, CanTransfer]


class ClientError(GraphQLError):
    """A refusal meant for the caller: its message and code reach them as they are."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def is_unexpected(error: GraphQLError) -> bool:
    """Raised by our code or a library without meaning to tell the caller (not a GraphQLError)."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


UNAVAILABLE_MESSAGE = "The service's database is unavailable or busy just now; nothing was done. Try again in a few seconds."


def _unavailable(error: GraphQLError) -> bool:
    """Raised because the database is away, or busy with another transaction (a deadlock, or
    SQLite's one write lock held by a worker's pair past the busy timeout): the statement rolled
    back, and the same request will work in a few seconds (models/db.py says which errors those are)."""
    return error.original_error is not None and is_transient(error.original_error)


def current_request_id() -> str:
    """The request's ID (X-Request-ID, as the response header returns it), or a fresh one outside a request."""
    return correlation_id.get() or uuid.uuid4().hex


def request_id(error: GraphQLError) -> str:
    """The ID that ties what the caller sees to the log; the trace is logged once, when it is given."""
    found = error.extensions.get("requestId") if error.extensions else None
    if found:
        return found
    found = current_request_id()
    error.extensions = {**(error.extensions or {}), "requestId": found}
    if _unavailable(error):  # not a fault to trace: the database is away or busy, and a retry will work
        log.warning("SERVICE_UNAVAILABLE: the database is unavailable or busy, requestId=%s", found)
        return found
    log.error(
        "Unexpected error, requestId=%s, path=%s",
        found,
        ".".join(map(str, error.path or [])) or "-",
        exc_info=error.original_error,
    )
    return found


def log_errors(errors: list[GraphQLError]) -> None:
    """The server's faults at ERROR with their trace; the caller's at INFO, without one, in one
    line however many there are (a document may hold a hundred validation errors, token or not)."""
    refusals = []
    for error in errors:
        if is_unexpected(error):
            request_id(error)
        else:
            refusals.append(error)
    if refusals:
        first, more = refusals[0], len(refusals) - 1
        log.info("%s: %s%s", code_of(first) or _refusal_code(first), first.message, f" (and {more} more)" if more else "")


def code_of(error: GraphQLError) -> str | None:
    return (error.extensions or {}).get("code")


def _needs_mask(error: GraphQLError) -> bool:
    return is_unexpected(error) or not code_of(error)


def _refusal_code(error: GraphQLError) -> str:
    """A caller's error that graphql-core made without a code: a syntax error, or (validation
    having given its own a code) a variable's or argument's value it could not take."""
    return "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "BAD_USER_INPUT"


def masked(errors: list[GraphQLError]) -> list[GraphQLError]:
    """`errors` as a caller may see them: each with a code, none with the server's text."""
    return [anonymised(e) if _needs_mask(e) else e for e in errors]


class MaskUnexpectedErrors(MaskErrors):
    """Applies `anonymised` to the errors of every result (each event of a subscription too)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_needs_mask)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return anonymised(error)


def anonymised(error: GraphQLError) -> GraphQLError:
    """An unexpected error's text replaced by INTERNAL_ERROR (SERVICE_UNAVAILABLE while the
    database is away) and its request ID; a caller's error without a code given its code."""
    if not is_unexpected(error):
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**(error.extensions or {}), "code": _refusal_code(error)},
        )
    unavailable = _unavailable(error)
    return GraphQLError(
        UNAVAILABLE_MESSAGE if unavailable else "Internal server error.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "SERVICE_UNAVAILABLE" if unavailable else "INTERNAL_ERROR", "requestId": request_id(error)},
    )
