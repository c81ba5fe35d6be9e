"""Errors callers can act on: `userErrors` entries and GraphQL error codes.

Bad input of a mutation is a `UserError` in its payload (stable code, message,
field path). Not being allowed at all is a GraphQL error whose
`extensions.code` is UNAUTHENTICATED or FORBIDDEN.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission

from models.rules import Problem


@strawberry.type
class UserError:
    code: str
    message: str
    field: list[str] | None = None


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
