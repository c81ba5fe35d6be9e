"""Descriptions for enums defined in models/ (which know nothing of GraphQL), as GraphiQL's docs pane shows them."""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import TypeVar

import strawberry

E = TypeVar("E", bound=enum.Enum)


def described_enum(cls: type[E], name: str, description: str, values: dict[str, str]) -> type[E]:
    """`cls` as a GraphQL enum; every value must be described (a KeyError at import otherwise)."""
    exposed = strawberry.enum(cls, name=name, description=description)
    definition = exposed.__strawberry_definition__  # type: ignore[attr-defined]
    definition.values = [replace(v, description=values[v.name]) for v in definition.values]
    return exposed
