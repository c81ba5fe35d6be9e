"""Plain data, completed without graphql-core's machinery per field.

A page of 50 users carries about 1,500 DataTypeCount objects, each with a
nested DataType: some 4,500 fields that only read an attribute. graphql-core
executes each with a resolve info, a path, an awaitable check and a resolver
call, which was most of the time of a users page. Here a field that strawberry
resolves by reading an attribute (a "basic" field: no resolver, no
permission, no extension, no arguments) is read directly: a scalar or enum is
coerced as graphql-core would, an object whose selected fields are all basic
becomes a dict, a list of such values a list.

Anything else goes through graphql-core as before: a resolver, an abstract
type or one with `is_type_of` (the Node types), `@defer`, middleware; and so
does a value graphql-core would refuse (a null where the schema forbids it,
a value a scalar cannot represent), which it then reports at its path. So
results and errors are exactly graphql-core's; only the work is less.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

_MISS: Any = object()  # "not plain after all: graphql-core completes it"
_TYPENAME = "__typename"
_LEAVES = (GraphQLScalarType, GraphQLEnumType)


def _attribute(field: GraphQLField) -> str | None:
    """The Python attribute a basic field reads, or None when the field is not basic."""
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or field.args or not getattr(field.resolve, "_is_default", False):
        return None
    return definition.python_name


class PlainDataExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, with basic fields completed in place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per selection (object type, field group): its fields as (response name, field, attribute),
        # or None when one of them is not plain. The field group is kept to pin its id.
        self._selections: dict[tuple[str, int], tuple[FieldDetailsList, list | None]] = {}
        self._fields: dict[tuple[str, int], tuple[FieldDetailsList, tuple | None]] = {}
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
            value = _MISS
            field = self._plain_field(parent_type, details)
            if field is not None:
                value = self._read(parent_type, field, details, source_value)
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
        if self._enabled and not isinstance(result, Exception) and self._plain_type(return_type, field_details_list):
            completed = self._complete(return_type, field_details_list, result)
            if completed is not _MISS:
                return completed
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    # What is plain: decided once per selection, from the schema and the document only.

    def _plain_field(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> tuple | None:
        """(field, attribute) of a basic field whose own selection is plain, else None."""
        key = (parent_type.name, id(details))
        known = self._fields.get(key)
        if known is None or known[0] is not details:
            known = self._fields[key] = (details, self._find_plain_field(parent_type, details))
        return known[1]

    def _find_plain_field(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> tuple | None:
        node = details[0].node
        name = node.name.value
        if name == _TYPENAME:
            return (None, None)
        field = parent_type.fields.get(name)
        if field is None or node.arguments:
            return None
        attribute = _attribute(field)
        if attribute is None or not self._plain_type(field.type, details):
            return None
        return (field, attribute)

    def _plain_type(self, type_: GraphQLOutputType, details: FieldDetailsList) -> bool:
        named = get_named_type(type_)
        if isinstance(named, _LEAVES):
            return True
        return isinstance(named, GraphQLObjectType) and self._selection(named, details) is not None

    def _selection(self, type_: GraphQLObjectType, details: FieldDetailsList) -> list | None:
        key = (type_.name, id(details))
        known = self._selections.get(key)
        if known is not None and known[0] is details:
            return known[1]
        fields: list | None = None
        if type_.is_type_of is None:
            grouped, defer_usages, _ = self.collect_subfields(type_, details)
            if not defer_usages:
                fields = []
                for response_name, sub_details in grouped.items():
                    found = self._plain_field(type_, sub_details)
                    if found is None:
                        fields = None
                        break
                    fields.append((response_name, sub_details, *found))
        self._selections[key] = (details, fields)
        return fields

    # Values: read and coerced; anything graphql-core would refuse goes back to it.

    def _read(self, parent_type: GraphQLObjectType, field: tuple, details: FieldDetailsList, source: Any) -> Any:
        definition, attribute = field
        if definition is None:
            return parent_type.name  # __typename
        try:
            value = getattr(source, attribute)
        except Exception:  # noqa: BLE001 - graphql-core reports it, at its path
            return _MISS
        return self._complete(definition.type, details, value)

    def _complete(self, type_: GraphQLOutputType, details: FieldDetailsList, value: Any) -> Any:
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                return _MISS
            type_ = type_.of_type
        elif value is None or value is Undefined:
            return None
        if isinstance(type_, _LEAVES):
            try:
                coerced = type_.coerce_output_value(value)
            except Exception:  # noqa: BLE001 - graphql-core reports it, at its path
                return _MISS
            return _MISS if coerced is None or coerced is Undefined else coerced
        if isinstance(type_, GraphQLList):
            if not isinstance(value, (list, tuple)):
                return _MISS
            items = []
            for item in value:
                completed = self._complete(type_.of_type, details, item)
                if completed is _MISS:
                    return _MISS
                items.append(completed)
            return items
        if isinstance(type_, GraphQLObjectType):
            selection = self._selection(type_, details)
            if selection is None:
                return _MISS
            completed_fields = {}
            for response_name, sub_details, definition, attribute in selection:
                if definition is None:
                    completed_fields[response_name] = type_.name
                    continue
                completed = self._read(type_, (definition, attribute), sub_details, value)
                if completed is _MISS:
                    return _MISS
                completed_fields[response_name] = completed
            return completed_fields
        return _MISS
