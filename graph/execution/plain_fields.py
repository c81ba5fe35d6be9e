"""Plain data, completed without graphql-core's machinery per field.

A page of users carries thousands of fields that only read an attribute, and graphql-core
executes each with a resolve info, a path, an awaitable check and a resolver call. Here a
"basic" field (no resolver, permission, extension or arguments) is read directly: a scalar
or enum is coerced as graphql-core would, an object whose selected fields are all basic
becomes a dict, a list of such values a list. What to do for a selection is worked out once
per request (a "completer", from the schema and the document), then applied to every value;
an instance of a type marked `shared` (made once at import, never changed) is completed once
per request and selection.

Anything else goes through graphql-core: a resolver, an abstract type or one with
`is_type_of` (the Node types), `@defer`, middleware, and a value graphql-core would refuse (a
null where the schema forbids it, a value a scalar cannot represent), which it then reports
at its path. So results and errors are exactly graphql-core's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

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

from graph.fences.graphql_core import FieldDetailsList, GroupedFieldSet
from graph.fences.strawberry import CoreExecutionContext, field_definition, reads_attribute

T = TypeVar("T")
_MISS: Any = object()  # "not plain after all: graphql-core completes it"
_TYPENAME = "__typename"

Completer = Callable[[Any], Any]  # a value (not null) -> its completed form, or _MISS
# How to complete a field: (response name, attribute, non-null, completer, a type whose values the
# scalar returns as they are); the attribute is None for __typename, and the completer its value.
Plan = tuple[str, str | None, bool, Any, type | None]
# graphql-core's own scalars return a value of these exact types unchanged (an Int: within 32 bits).
_AS_IS: dict[int, type] = {id(GraphQLString): str, id(GraphQLID): str, id(GraphQLBoolean): bool, id(GraphQLInt): int}
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _attribute(field: GraphQLField) -> str | None:
    """The Python attribute a basic field reads, or None when the field is not basic."""
    definition = field_definition(field)
    if definition is None or field.args or not reads_attribute(field):
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


def _list(item: Completer, non_null_items: bool) -> Completer:
    def complete(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            return _MISS
        items = []
        for element in value:
            if element is None or element is Undefined:
                if non_null_items:
                    return _MISS
                items.append(None)
                continue
            completed = item(element)
            if completed is _MISS:
                return _MISS
            items.append(completed)
        return items

    return complete


def _object(plans: list[Plan]) -> Completer:
    # The hot loop of a users page: reading a field is written out here, not called.
    def complete(source: Any) -> Any:
        fields = {}
        for response_name, attribute, non_null, field, as_is in plans:
            if attribute is None:
                fields[response_name] = field  # __typename
                continue
            try:
                value = getattr(source, attribute)
            except Exception:  # noqa: BLE001 - graphql-core reports it, at its path
                return _MISS
            if value is None or value is Undefined:
                if non_null:
                    return _MISS
                fields[response_name] = None
            elif type(value) is as_is and (as_is is not int or _INT_MIN <= value <= _INT_MAX):
                fields[response_name] = value
            else:
                value = field(value)
                if value is _MISS:
                    return _MISS
                fields[response_name] = value
        return fields

    return complete


_SHARED: set[type] = set()


def shared(cls: type[T]) -> type[T]:
    """Marks a type whose instances are made once, at import, and never changed (the data-type
    catalogue): a request completes each instance once per selection and reuses that, since a
    users page names the same few data types again and again."""
    _SHARED.add(cls)
    return cls


def _once_each(complete: Completer) -> Completer:
    done: dict[int, tuple[Any, Any]] = {}  # id -> (the instance, which pins the id; its completed form)

    def completed_once(value: Any) -> Any:
        found = done.get(id(value))
        if found is None:
            found = done[id(value)] = (value, complete(value))
        return found[1]

    return completed_once


class PlainDataExecutionContext(CoreExecutionContext):
    """strawberry's execution context, with basic fields completed in place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keyed by ids of the schema's type and the document's nodes, not of graphql-core's lists
        # of them: each event of a subscription collects new lists of the same nodes. The nodes
        # are kept in the value, which pins their ids for as long as the key is used.
        self._completers: dict[tuple[int, ...], tuple[list[Any], Completer | None]] = {}
        self._splits: dict[tuple[int, ...], tuple[list[Any], Completer | None, list[str]]] = {}
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
        plain_fields, rest = self._split(parent_type, grouped_field_set) if self._enabled else (None, grouped_field_set)
        plain = _MISS if plain_fields is None else plain_fields(source_value)
        if plain is _MISS:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
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
        if self._enabled and result is not None and result is not Undefined and not isinstance(result, Exception):
            non_null = isinstance(return_type, GraphQLNonNull)
            complete = self._completer(return_type.of_type if non_null else return_type, field_details_list)
            if complete is not None:
                completed = complete(result)
                if completed is not _MISS:
                    return completed
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    # What is plain: decided once per selection, from the schema and the document only.

    def _split(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> tuple[Completer | None, GroupedFieldSet]:
        """The completer of the plain fields among `grouped` (None if there are none), and the others."""
        nodes = [d.node for details in grouped.values() for d in details]
        key = (id(parent_type), *map(id, nodes))
        known = self._splits.get(key)
        if known is None:
            plans, rest = [], []
            for response_name, details in grouped.items():
                plan = self._plan(parent_type, response_name, details)
                if plan is None:
                    rest.append(response_name)
                else:
                    plans.append(plan)
            known = self._splits[key] = (nodes, _object(plans) if plans else None, rest)
        return known[1], {name: grouped[name] for name in known[2]}

    def _plan(self, parent_type: GraphQLObjectType, response_name: str, details: FieldDetailsList) -> Plan | None:
        """How to complete a basic field whose own selection is plain, else None."""
        node = details[0].node
        if node.name.value == _TYPENAME:
            return (response_name, None, True, parent_type.name, None)
        field = parent_type.fields.get(node.name.value)
        if field is None or node.arguments:
            return None
        attribute = _attribute(field)
        non_null = isinstance(field.type, GraphQLNonNull)
        type_ = field.type.of_type if non_null else field.type
        complete = self._completer(type_, details) if attribute is not None else None
        return None if complete is None else (response_name, attribute, non_null, complete, _AS_IS.get(id(type_)))

    def _completer(self, type_: GraphQLOutputType, details: FieldDetailsList) -> Completer | None:
        """The completer of a value of `type_` (not wrapped in non-null, and not null), or None."""
        nodes = [d.node for d in details]
        key = (id(type_), *map(id, nodes))
        known = self._completers.get(key)
        if known is None:
            known = self._completers[key] = (nodes, self._make_completer(type_, details))
        return known[1]

    def _make_completer(self, type_: GraphQLOutputType, details: FieldDetailsList) -> Completer | None:
        if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
            return _leaf(type_)
        if isinstance(type_, GraphQLList):
            non_null_items = isinstance(type_.of_type, GraphQLNonNull)
            item_type = type_.of_type.of_type if non_null_items else type_.of_type
            item = self._completer(item_type, details)
            return None if item is None else _list(item, non_null_items)
        if not isinstance(type_, GraphQLObjectType) or type_.is_type_of is not None:
            return None
        grouped, defer_usages, _ = self.collect_subfields(type_, details)
        if defer_usages:
            return None
        plans = []
        for response_name, sub_details in grouped.items():
            plan = self._plan(type_, response_name, sub_details)
            if plan is None:
                return None
            plans.append(plan)
        definition = field_definition(type_)
        return _once_each(_object(plans)) if getattr(definition, "origin", None) in _SHARED else _object(plans)
