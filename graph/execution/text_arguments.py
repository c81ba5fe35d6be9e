"""Text the database can store (models/text.py) in every string argument, before any resolver runs.

The document's literals are checked by a validation rule (kept with the document's other
validation answers, graph/execution/documents.py), and each request's variables, whatever their type
or nesting, before validation. HTTP and both WebSocket protocols run the same extension.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import SchemaExtension

from graph.core.errors import ClientError
from models.text import INVALID_TEXT, storable


def refusal() -> ClientError:
    return ClientError(
        INVALID_TEXT, "A string argument holds a NUL character or a lone UTF-16 surrogate, which cannot be stored as text."
    )


class StorableLiterals(ValidationRule):
    """Every string literal of the document (arguments, input objects, lists, variables' defaults)."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if not storable(node.value):
            error = refusal()
            self.report_error(GraphQLError(error.message, node, extensions=error.extensions))


def _strings(value: object) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_variables(variables: Mapping[str, Any] | None) -> None:
    """Raise INVALID_TEXT when any string of the variables (names and keys too) cannot be stored."""
    if variables and not all(storable(s) for s in _strings(variables)):
        raise refusal()


class StorableText(SchemaExtension):
    """Refuses a request whose variables hold text the database cannot store, and has
    validation check the literals (it runs before graph/execution/documents.py's DocumentCache)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, StorableLiterals)
        if context.pre_execution_errors is None:
            try:
                check_variables(context.variables)
            except ClientError as error:
                context.pre_execution_errors = [error]  # strawberry then skips validation and answers this
        yield
