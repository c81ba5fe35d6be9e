"""Plain data, completed without graphql-core's machinery per field.

A page of 50 users carries about 1,500 DataTypeCount objects, each with a
nested DataType: some 4,500 fields that only read an attribute. graphql-core
executes each with a resolve info, a path, an awaitable check and a resolver
call, which was most of the time of a users page. Here a field that strawberry
resolves by reading an attribute (a "basic" field: no resolver, no
permission, no extension, no arguments) is read directly: a scalar or enum is
coerced as graphql-core would, an object whose selected fields are all basic
becomes a dict, a list of such values a list. What to do for a selection is
worked out once per request (a "completer", from the schema and the
document), then applied to every value.

Anything else goes through graphql-core as before: a resolver, an abstract
type or one with `is_type_of` (the Node types), `@defer`, middleware; and so
does a value graphql-core would refuse (a null where the schema forbids it,
a value a scalar cannot represent), which it then reports at its path. So
results and errors are exactly graphql-core's; only the work is less.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

_MISS: Any = object()  # "not plain after all: graphql-core completes it"
_TYPENAME = "__typename"

Completer = Callable[[Any], Any]  # a value -> its completed form, or _MISS
# How to complete a field: (attribute, non-null, completer of a value that is not null, a type whose
# values the scalar returns as they are); (None, _, type name, _) for __typename.
Plan = tuple[str | None, bool, Any, type | None]
# graphql-core's own scalars return a value of these exact types unchanged (an Int: within 32 bits).
_AS_IS: dict[int, type] = {id(GraphQLString): str, id(GraphQLID): str, id(GraphQLBoolean): bool, id(GraphQLInt): int}
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _attribute(field: GraphQLField) -> str | None:
    """The Python attribute a basic field reads, or None when the field is not basic."""
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or field.args or not getattr(field.resolve, "_is_default", False):
        return None
    return definition.python_name


def _leaf(type_: GraphQLScalarType | GraphQLEnumType) -> Completer:
    coerce = type_.coerce_output_value

    def complete(value: Any) -> Any:
        try:
            coerced = coerce(value)
        except Exception:  # noqa: BLE001 - graphql-core reports it, at its path
            return _MISS
        return _MISS if coerced is None or coerced is Undefined else coerced

    return complete


def _list(item: Completer) -> Completer:
    def complete(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            return _MISS
        items = []
        for element in value:
            completed = item(element)
            if completed is _MISS:
                return _MISS
            items.append(completed)
        return items

    return complete


def _read(plan: Plan, source: Any) -> Any:
    attribute, non_null, complete, as_is = plan
    if attribute is None:
        return complete  # __typename
    try:
        value = getattr(source, attribute)
    except Exception:  # noqa: BLE001 - graphql-core reports it, at its path
        return _MISS
    if value is None or value is Undefined:
        return _MISS if non_null else None
    if type(value) is as_is and (as_is is not int or _INT_MIN <= value <= _INT_MAX):
        return value
    return complete(value)


def _object(plans: list[tuple[str, Plan]]) -> Completer:
    def complete(value: Any) -> Any:
        fields = {}
        for response_name, plan in plans:
            completed = _read(plan, value)
            if completed is _MISS:
                return _MISS
            fields[response_name] = completed
        return fields

    return complete


def _non_null(inner: Completer) -> Completer:
    return lambda value: _MISS if value is None else inner(value)


def _nullable(inner: Completer) -> Completer:
    return lambda value: None if value is None or value is Undefined else inner(value)


class PlainDataExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, with basic fields completed in place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keyed by the ids of a type and a field group; the group is kept in the value to pin its id.
        self._completers: dict[tuple[int, int], tuple[FieldDetailsList, Completer | None]] = {}
        self._plans: dict[tuple[int, int], tuple[FieldDetailsList, Plan | None]] = {}
        # strawberry passes a manager on every request; it only matters when an extension resolves fields.
        self._enabled = self.middleware_manager is None or not self.middleware_manager.middlewares

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        if not self._enabled:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        plain: dict[str, Any] = {}
        rest: GroupedFieldSet = {}
        for response_name, details in grouped_field_set.items():
            plan = self._plan(parent_type, details)
            value = _MISS if plan is None else _read(plan, source_value)
            if value is _MISS:
                rest[response_name] = details
            else:
                plain[response_name] = value
        if not rest:
            return plain
        results = super().execute_fields(parent_type, source_value, path, rest, position_context)

        def in_order(done: dict[str, Any]) -> dict[str, Any]:
            return {key: plain[key] if key in plain else done[key] for key in grouped_field_set if key in plain or key in done}

        if self.is_awaitable(results):

            async def awaited() -> dict[str, Any]:
                return in_order(await results)

            return awaited()
        return in_order(results)

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        # What a resolver returned (a user's list of data counts) is completed here whole when plain.
        if self._enabled and not isinstance(result, Exception):
            complete = self._completer(return_type, field_details_list)
            if complete is not None:
                completed = complete(result)
                if completed is not _MISS:
                    return completed
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    # What is plain: decided once per selection, from the schema and the document only.

    def _plan(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> Plan | None:
        """How to complete a basic field whose own selection is plain, else None."""
        key = (id(parent_type), id(details))
        known = self._plans.get(key)
        if known is None or known[0] is not details:
            known = self._plans[key] = (details, self._make_plan(parent_type, details))
        return known[1]

    def _make_plan(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> Plan | None:
        node = details[0].node
        if node.name.value == _TYPENAME:
            return (None, True, parent_type.name, None)
        field = parent_type.fields.get(node.name.value)
        if field is None or node.arguments:
            return None
        attribute = _attribute(field)
        non_null = isinstance(field.type, GraphQLNonNull)
        type_ = field.type.of_type if non_null else field.type
        complete = self._core(type_, details) if attribute is not None else None
        return None if complete is None else (attribute, non_null, complete, _AS_IS.get(id(type_)))

    def _completer(self, type_: GraphQLOutputType, details: FieldDetailsList) -> Completer | None:
        key = (id(type_), id(details))
        known = self._completers.get(key)
        if known is None or known[0] is not details:
            known = self._completers[key] = (details, self._make_completer(type_, details))
        return known[1]

    def _make_completer(self, type_: GraphQLOutputType, details: FieldDetailsList) -> Completer | None:
        if isinstance(type_, GraphQLNonNull):
            core = self._core(type_.of_type, details)
            return None if core is None else _non_null(core)
        core = self._core(type_, details)
        return None if core is None else _nullable(core)

    def _core(self, type_: GraphQLOutputType, details: FieldDetailsList) -> Completer | None:
        """The completer of a value known not to be null."""
        if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
            return _leaf(type_)
        if isinstance(type_, GraphQLList):
            item = self._completer(type_.of_type, details)
            return None if item is None else _list(item)
        if not isinstance(type_, GraphQLObjectType) or type_.is_type_of is not None:
            return None
        grouped, defer_usages, _ = self.collect_subfields(type_, details)
        if defer_usages:
            return None
        plans = []
        for response_name, sub_details in grouped.items():
            plan = self._plan(type_, sub_details)
            if plan is None:
                return None
            plans.append((response_name, plan))
        return _object(plans)
