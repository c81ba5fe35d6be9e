"""Parsed and validated documents, kept per query text, and the one operation a request runs.

Front ends send the same few queries again and again: parsing and validation are kept in
bounded LRU caches (a stream of distinct texts cannot grow memory), keyed by the text and by
the document. Validation depends on the schema and the document only, never on variables, so
a cached answer is the answer. This extension runs after QueryLimits: a text or document over
a limit is refused before anything is parsed or validated for it.

graphql-core's validation errors carry no code: each gets GRAPHQL_VALIDATION_FAILED (a rule of
ours keeps its own, e.g. INVALID_TEXT). A document with several operations runs the one
`operationName` names; without one, or naming none of them, nothing runs
(OPERATION_NAME_REQUIRED), as the GraphQL specification says (strawberry would run the first).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, parse
from strawberry.extensions import SchemaExtension

from graph.core.errors import ClientError
from graph.fences.strawberry import graphql_schema, provided_operation_name, validate_document

CACHED_DOCUMENTS = 256
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"

_parse = lru_cache(maxsize=CACHED_DOCUMENTS)(parse)


@lru_cache(maxsize=CACHED_DOCUMENTS)
def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> tuple[GraphQLError, ...]:
    errors = validate_document(schema, document, rules)
    for error in errors:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}
    return tuple(errors)


def check_operation_name(document: DocumentNode, name: str | None) -> None:
    """Raise OPERATION_NAME_REQUIRED unless `name` picks exactly one operation of the document."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if not operations:
            raise ClientError(VALIDATION_FAILED, "The document holds no operation to run.")
        if len(operations) > 1:
            raise ClientError(
                "OPERATION_NAME_REQUIRED", "The document holds several operations: operationName must name the one to run."
            )
    elif not any(o.name is not None and o.name.value == name for o in operations):
        raise ClientError("OPERATION_NAME_REQUIRED", "operationName names no operation of the document.")


class DocumentCache(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            with suppress(GraphQLError):  # strawberry parses it again and reports the error as usual
                context.graphql_document = _parse(context.query, **context.parse_options)
        yield
        if context.graphql_document is not None:
            # Raised: the operation ends with this error (graph/api/schema.py answers it on WebSockets too).
            check_operation_name(context.graphql_document, provided_operation_name(context))

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        # Errors set already (QueryLimits refused the document): they stand, as with strawberry's own validation.
        if context.pre_execution_errors is None and context.graphql_document is not None and context.validation_rules:
            context.pre_execution_errors = list(_validate(graphql_schema(context.schema), context.graphql_document, context.validation_rules))
        yield
