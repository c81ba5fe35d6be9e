"""What the API reports about each GraphQL operation: a count and a time per root field, and who asked.

Metrics are labelled by the operation's root field as the schema names it
(`users`, `startTransfer`, `transferEvents`, `__schema`), `multiple` when it
selects several, `other` when it names none the schema knows or was refused
before it could be read. Never by the client's `operationName`: that is free
text, and every new spelling would be a new time series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator

import structlog
from graphql import FieldNode, OperationDefinitionNode, OperationType
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from graph.fences.strawberry import graphql_schema
from jobs import metrics
from models.transfers import BulkUpload

log = logging.getLogger(__name__)
INTROSPECTION = frozenset({"__schema", "__type", "__typename"})


def _operation(context: ExecutionContext) -> OperationDefinitionNode | None:
    document = context.graphql_document
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    name = context.operation_name
    chosen = [o for o in operations if name is None or (o.name and o.name.value == name)]
    return chosen[0] if len(chosen) == 1 else None


def operation_label(context: ExecutionContext) -> str:
    """The root field the operation selects, as the schema knows it; `multiple` or `other` otherwise."""
    operation = _operation(context)
    if operation is None:
        return "other"
    schema = graphql_schema(context.schema)
    root = {OperationType.QUERY: schema.query_type, OperationType.MUTATION: schema.mutation_type,
            OperationType.SUBSCRIPTION: schema.subscription_type}.get(operation.operation)
    known = INTROSPECTION | set(root.fields if root else ())
    names = set()
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.name.value not in known:
            return "other"
        names.add(selection.name.value)
    if len(names) > 1:
        return "multiple"
    return names.pop() if names else "other"


class RequestMetrics(SchemaExtension):
    """Counts and times every operation; puts the operator and tenant in the request's log context."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "error"
        try:
            yield
            context = self.execution_context
            failed = context.pre_execution_errors or (context.result is not None and context.result.errors)
            outcome = "error" if failed else "ok"
        finally:
            context = self.execution_context
            label = operation_label(context)
            metrics.REQUESTS.labels(label, outcome).inc()
            operation = _operation(context)
            if operation is None or operation.operation is not OperationType.SUBSCRIPTION:  # a subscription lasts
                metrics.REQUEST_SECONDS.labels(label).observe(time.perf_counter() - started)

    async def on_execute(self) -> AsyncIterator[None]:
        # Resolved here, in the request's own task, so that its log context (graph/core/context.py)
        # covers every line of the request; resolvers run in tasks of their own.
        await self.execution_context.context.operator()
        yield


def upload_checked(upload: BulkUpload) -> None:
    structlog.contextvars.bind_contextvars(upload_id=upload.id)
    log.info("upload checked", extra={"pairs": upload.pair_count, "errors": upload.error_count})

