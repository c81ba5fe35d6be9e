"""strawberry-graphql internals, each behind one name.

Checked against strawberry-graphql 0.341.2 (CHECKED: the minor version; pyproject.toml admits
no other). Each name below is either underscored in strawberry or lives in a module its
documentation does not offer; the public API lacks what each is used for:

- `graphql_schema`: the graphql-core schema under a strawberry schema, for validation and the
  root types in extensions, which get the strawberry schema only (strawberry's own extensions
  and printer read `schema._schema` too).
- `provided_operation_name`: the operationName a request gave; the public `operation_name`
  falls back to the first operation's name, so a document of several operations without one
  would run its first instead of being refused (graph/execution/documents.py).
- `raw_fragments`: the fragments of the document a resolver runs in; strawberry's `Info`
  offers the operation but not its fragments (graph/api/transfer_events.py).
- `CoreExecutionContext`, `field_definition`, `reads_attribute`: the execution context
  strawberry gives graphql-core, extended in graph/execution/plain_fields.py, and how
  strawberry marks a field's definition and a resolver that only reads an attribute.
- `validate_document`: strawberry's validation, cached per document in
  graph/execution/documents.py.
- `SchemaExtensionsRunner` (Schema.create_extensions_runner's result), `InvalidOperationTypeError`,
  `PreExecutionError`, `OperationType`: graph/api/schema.py trims the runner's per-event work
  and answers subscriptions over HTTP and refused WebSocket operations.
- the view's HTTP hooks (`parse_http_body`, `parse_multipart`, `parse_json`, `run`, with
  cross_web's `AsyncHTTPRequestAdapter` and `HTTPException`) and `parse_content_type`:
  graph/server/view.py checks each request as strawberry reads it.
- the WebSocket protocol handlers and their exceptions: graph/live/ws_protocols.py checks each
  message's shape before strawberry reads it.
- `Selection`, `SelectedField`: the types of the public `Info.selected_fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import FragmentDefinitionNode, GraphQLField, GraphQLNamedType, GraphQLSchema
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.http.parse_content_type import parse_content_type
from strawberry.resolvers import is_default_resolver
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as CoreExecutionContext
from strawberry.schema.schema import validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.nodes import SelectedField, Selection
from strawberry.types.unset import UnsetType

LIBRARY = "strawberry-graphql"
CHECKED = "0.341"

__all__ = [
    "AsyncHTTPRequestAdapter", "BaseGraphQLTransportWSHandler", "BaseGraphQLWSHandler", "CoreExecutionContext",
    "HTTPException", "InvalidOperationTypeError", "NonJsonMessageReceived", "NonTextMessageReceived", "OperationType",
    "PreExecutionError", "SchemaExtensionsRunner", "SelectedField", "Selection", "UnsetType", "WebSocketDisconnected",
    "field_definition", "graphql_schema", "parse_content_type", "provided_operation_name", "raw_fragments",
    "reads_attribute", "validate_document",
]


def graphql_schema(schema: Any) -> GraphQLSchema:
    """The graphql-core schema a strawberry schema built."""
    return schema._schema


def provided_operation_name(context: Any) -> str | None:
    """The operationName the request gave (None when it gave none), from strawberry's ExecutionContext."""
    return context._provided_operation_name


def raw_fragments(info: Any) -> Mapping[str, FragmentDefinitionNode]:
    """The fragments of the document that a resolver's `info` runs in."""
    return info._raw_info.fragments


def field_definition(element: GraphQLField | GraphQLNamedType) -> Any:
    """The strawberry definition a graphql-core field or type was built from, or None."""
    return element.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)


def reads_attribute(field: GraphQLField) -> bool:
    """Whether the field's resolver is strawberry's default one, which reads an attribute."""
    return is_default_resolver(field.resolve)
