"""The schema: each domain's queries, mutations and subscriptions put together."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from graph.api.bulk import BulkMutations, BulkQueries, BulkUpload, find_upload
from graph.api.reverts import RevertMutations, RevertQueries
from graph.api.transfer_events import EventSubscriptions
from graph.api.transfers import Transfer, TransferMutations, TransferQueries, find_transfer
from graph.api.users import User, UserQueries, View, show_user, visible_views
from graph.api.webhooks import WebhookDelivery, WebhookEndpoint, WebhookMutations, WebhookQueries, find_delivery, find_endpoint
from graph.core.errors import TRANSFERS, ClientError, MaskUnexpectedErrors, log_errors, masked
from graph.core.relay import Node, from_global_id
from graph.execution.documents import DocumentCache
from graph.execution.limits import QueryLimits
from graph.execution.shared_events import SharedEventExecutor
from graph.execution.telemetry import RequestMetrics
from graph.execution.text_arguments import StorableText
from graph.fences.strawberry import InvalidOperationTypeError, OperationType, PreExecutionError, SchemaExtensionsRunner


@strawberry.type(description="Reads. Every field but viewer and dataTypes needs the transfer permission.")
class Query(UserQueries, TransferQueries, BulkQueries, RevertQueries, WebhookQueries):
    @strawberry.field(permission_classes=TRANSFERS, description="Any object by its global ID.")
    async def node(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global ID (User, View, Transfer, BulkUpload, WebhookEndpoint, WebhookDelivery).")],  # noqa: A002
    ) -> Node | None:
        op = await info.context.operator()
        found = from_global_id(id)
        if found is None:
            return None
        type_name, pk = found
        if type_name == "User":
            return await show_user(info.context, pk)
        if type_name == "View":
            return next((View.of(v) for v in await visible_views(op) if v.id == pk), None)
        if type_name == "Transfer":
            return Transfer.maybe(await find_transfer(op, id))
        if type_name == "BulkUpload":
            upload = await find_upload(op, id)
            return BulkUpload.of(upload) if upload else None
        if type_name == "WebhookEndpoint":
            return await find_endpoint(op, id)
        if type_name == "WebhookDelivery":
            return await find_delivery(op, id)
        return None


@strawberry.type(description="Changes. Bad input is in each payload's userErrors; nothing changes then.")
class Mutation(TransferMutations, BulkMutations, RevertMutations, WebhookMutations):
    pass


@strawberry.type(description="Live updates, over a WebSocket at /graphql (graphql-transport-ws or graphql-ws).")
class Subscription(EventSubscriptions):
    pass


class _LeanStreams(SchemaExtensionsRunner):
    """strawberry's runner, minus what it repeats for each event of each subscription for nothing
    (a large share of the API's time with many subscribers): our one `on_stream_result`
    hook masks errors, so an event without any skips the hooks, whose set-up strawberry rebuilds
    each time; and only extensions that have results are asked for them."""

    def __init__(self, execution_context: Any, extensions: list[SchemaExtension]) -> None:
        super().__init__(execution_context=execution_context, extensions=extensions)
        self._with_results = [e for e in self.extensions if type(e).get_results is not SchemaExtension.get_results]

    def on_stream_result(self, result: Any) -> Any:
        if getattr(result, "errors", None):
            return super().on_stream_result(result)
        return _NOTHING

    async def get_extensions_results(self, ctx: Any) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._with_results:
            results = extension.get_results()
            data.update(await results if inspect.isawaitable(results) else results)
        data.update(ctx.extensions_results)
        return data


_NOTHING = contextlib.nullcontext()


class Schema(strawberry.Schema):
    def create_extensions_runner(self, execution_context: Any, extensions: list) -> SchemaExtensionsRunner:
        return _LeanStreams(execution_context, extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # strawberry's default logs every error, a refused token too, with a trace at ERROR
        log_errors(errors)

    async def execute(self, *args: Any, allowed_operation_types: Any = None, **kwargs: Any) -> Any:
        """HTTP operations: a subscription is refused with a 400 that says to use a WebSocket
        (strawberry would run it as a query and fail with an internal error). An extension's hook
        that raises ends the operation outside MaskUnexpectedErrors: its errors are masked here."""
        if allowed_operation_types is not None:
            allowed_operation_types = set(allowed_operation_types) - {OperationType.SUBSCRIPTION}
        try:
            result = await super().execute(*args, allowed_operation_types=allowed_operation_types, **kwargs)
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise SubscriptionOverHTTP(exc.operation_type) from None
            raise
        if result.errors:
            result.errors = masked(result.errors)
        return result

    async def stream(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        """WebSocket operations. A refusal raised in a parse hook (QueryLimits, DocumentCache)
        ends the operation with that error, as on HTTP: strawberry's streaming path lets it
        escape, and its handlers would answer INTERNAL_ERROR."""
        if not query:
            return _refused(ClientError("BAD_REQUEST", "The operation has no query."))
        return _answering_refusals(await super().stream(query, *args, **kwargs))

    async def subscribe(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        """The legacy graphql-ws protocol (strawberry subscribes with it) runs queries and
        mutations too, one result each, as graphql-transport-ws does."""
        return await self.stream(query, *args, **kwargs)


class SubscriptionOverHTTP(InvalidOperationTypeError):
    def as_http_error_reason(self, method: str) -> str:
        return "Subscriptions run over a WebSocket at /graphql (graphql-transport-ws or graphql-ws), not over HTTP."


async def _refused(error: GraphQLError) -> AsyncIterator[PreExecutionError]:
    log_errors([error])
    yield PreExecutionError(data=None, errors=[error])


async def _answering_refusals(results: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        async with contextlib.aclosing(results):  # type: ignore[type-var]
            async for result in results:
                yield result
    except ClientError as refusal:  # raised before the first result: resolvers' errors are results
        async for result in _refused(refusal):
            yield result


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[User, View, Transfer, BulkUpload, WebhookEndpoint, WebhookDelivery],
    extensions=[RequestMetrics, QueryLimits, StorableText, DocumentCache, MaskUnexpectedErrors],
    execution_context_class=SharedEventExecutor,
)
