"""Parsed and validated documents, kept per query text.

A front end sends the same few queries again and again; parsing and
validating the users page's query took about a tenth of its time. Both are
kept in bounded LRU caches (so a stream of distinct texts cannot grow
memory), keyed by the text and by the document. Validation depends on the
schema and the document only, never on variables, so a cached answer is the
answer. This extension runs after QueryLimits: a text or document over a limit
is still refused before anything is parsed or validated for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import GraphQLError, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

CACHED_DOCUMENTS = 256

_parse = lru_cache(maxsize=CACHED_DOCUMENTS)(parse)
_validate = lru_cache(maxsize=CACHED_DOCUMENTS)(validate_document)


class DocumentCache(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            with suppress(GraphQLError):  # strawberry parses it again and reports the error as usual
                context.graphql_document = _parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        # Errors set already (QueryLimits refused the document): they stand, as with strawberry's own validation.
        if context.pre_execution_errors is None and context.graphql_document is not None and context.validation_rules:
            errors = _validate(context.schema._schema, context.graphql_document, context.validation_rules)
            context.pre_execution_errors = list(errors)
        yield
