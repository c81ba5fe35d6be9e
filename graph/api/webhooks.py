"""Webhooks: a tenant's endpoints and their deliveries, and the mutations that manage them.

Only a tenant-wide operator (the transfer permission, no view) manages or reads
them: an endpoint hears of every transfer of the tenant. Anyone else with the
transfer permission gets FORBIDDEN (a userError in a mutation's payload, a
GraphQL error on the query). A mutation that makes a delivery due offers its
job after the commit; the workers send it (jobs/webhooks.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

import strawberry
from redis.exceptions import RedisError

from graph.api.transfers import Transfer
from graph.core.errors import TRANSFERS, ClientError, UserError
from graph.core.relay import AFTER, FIRST, Node, connection_of, pk_of, to_global_id
from jobs import webhooks as webhook_jobs
from models import webhook_deliveries, webhook_endpoints, webhooks
from models.problems import Problem
from models.tenancy import User as UserModel

log = logging.getLogger(__name__)

EVENTS_DESCRIPTION = f"Events to send: {', '.join(webhooks.EVENTS)}."
# Where a problem's input is, by its role (models/problems.py) or code.
_FIELDS = {"url": ["input", "url"], "events": ["input", "events"], "NOT_FOUND": ["input", "id"]}


def _errors(problems: list[Problem]) -> list[UserError]:
    return [UserError(code=p.code, message=p.message, field=_FIELDS.get(p.role or p.code)) for p in problems]


@strawberry.type(description="One event for one endpoint, and where its attempts are. Its id is its webhook-id.")
class WebhookDelivery(Node):
    transfer_pk: strawberry.Private[int | None]
    event: str = strawberry.field(description="transfer.succeeded, ..., or webhook.test.")
    status: str = strawberry.field(description="PENDING (an attempt is due), DELIVERED (a 2xx) or FAILED (given up).")
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_response_status: int | None = strawberry.field(description="The HTTP status of the last attempt; null: none.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed (or the endpoint gave up).")
    next_attempt_at: datetime | None = strawberry.field(description="When the next attempt is due; null: none.")
    created_at: datetime = strawberry.field(description="When the event happened.")

    @classmethod
    def of(cls, d: webhooks.WebhookDelivery) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(webhook_deliveries.delivery_id(d.id)),
            transfer_pk=d.transfer_id,
            event=d.event,
            status=webhooks.DeliveryStatus(d.status).value,
            attempts=d.attempts,
            last_response_status=d.last_response_status,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
        )

    @strawberry.field(description="The transfer whose end it announces; null for webhook.test.")
    async def transfer(self, info: strawberry.Info) -> Transfer | None:
        if self.transfer_pk is None:
            return None
        return Transfer.maybe(await info.context.loaders.transfer.load(self.transfer_pk))


WebhookDeliveryConnection = connection_of(WebhookDelivery, "delivery", "deliveries", "an endpoint's deliveries", ", newest first")


@strawberry.type(description="Where the tenant's transfer endings are sent, signed (Standard Webhooks).")
class WebhookEndpoint(Node):
    pk: strawberry.Private[int]
    url: str = strawberry.field(description="Where deliveries are POSTed: https, public addresses only.")
    events: list[str] = strawberry.field(description="The events it gets.")
    description: str | None = strawberry.field(description="A note for people.")
    enabled: bool = strawberry.field(description="False: it gets nothing until enabled again.")
    disabled_reason: str | None = strawberry.field(description="Why it was disabled (410 Gone, 3 days of failures, a person).")
    created_at: datetime = strawberry.field(description="When it was created.")

    @classmethod
    def of(cls, e: webhooks.WebhookEndpoint) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(to_global_id("WebhookEndpoint", e.id)),
            pk=e.id,
            url=e.url,
            events=list(e.events),
            description=e.description,
            enabled=e.enabled,
            disabled_reason=e.disabled_reason,
            created_at=e.created_at,
        )

    @strawberry.field(description="Its deliveries, newest first.")
    async def deliveries(
        self,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> WebhookDeliveryConnection:  # type: ignore[valid-type]
        query = webhooks.WebhookDelivery.filter(endpoint_id=self.pk)
        return await WebhookDeliveryConnection.page(
            query, f"deliveries.{self.pk}", "id", first, after, lambda rows: [WebhookDelivery.of(d) for d in rows],
            descending=True,
        )


WebhookEndpointConnection = connection_of(WebhookEndpoint, "webhook endpoint", "webhook endpoints", order=", oldest first")


async def manager(info: strawberry.Info) -> UserModel:
    """The operator, if they may read webhooks; else FORBIDDEN."""
    operator = await info.context.operator()
    if not webhook_endpoints.may_manage(operator):
        raise ClientError("FORBIDDEN", webhook_endpoints.FORBIDDEN.message)
    return operator


async def find_endpoint(operator: UserModel, global_id: str) -> WebhookEndpoint | None:
    if not webhook_endpoints.may_manage(operator):
        return None
    found = await webhook_endpoints.find(operator, pk_of(global_id, "WebhookEndpoint"))
    return WebhookEndpoint.of(found) if found else None


async def find_delivery(operator: UserModel, global_id: str) -> WebhookDelivery | None:
    if not webhook_endpoints.may_manage(operator):
        return None
    found = await webhook_deliveries.find_delivery(operator, pk_of(global_id, "WebhookDelivery"))
    return WebhookDelivery.of(found) if found else None


async def _offer(info: strawberry.Info, delivery: webhooks.WebhookDelivery) -> None:
    """Queue a delivery made due; Redis away costs only time (the workers' sweep finds it)."""
    try:
        await webhook_jobs.offer(info.context.pool, [delivery])
    except (RedisError, OSError) as exc:
        log.warning("could not queue webhook delivery %s now (%r); the sweep will", delivery.id, exc)


@strawberry.input(description="A new endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="https URL on a public address (INVALID_WEBHOOK_URL otherwise).")
    events: list[str] = strawberry.field(description=EVENTS_DESCRIPTION)
    description: str | None = strawberry.field(default=None, description="A note for people.")


@strawberry.input(description="What to change of an endpoint; what is null stays as it is.")
class UpdateWebhookEndpointInput:
    id: strawberry.ID = strawberry.field(description="The endpoint's ID.")
    url: str | None = strawberry.field(default=None, description="A new URL, checked as when created.")
    events: list[str] | None = strawberry.field(default=None, description=EVENTS_DESCRIPTION)
    description: str | None = strawberry.field(default=None, description="A new note.")
    enabled: bool | None = strawberry.field(
        default=None, description="false: stop (its pending deliveries fail); true: start again, the reason cleared."
    )


@strawberry.input(description="The endpoint to delete, with its deliveries.")
class DeleteWebhookEndpointInput:
    id: strawberry.ID = strawberry.field(description="The endpoint's ID.")


@strawberry.input(description="The endpoint whose secret to replace.")
class RotateWebhookSecretInput:
    id: strawberry.ID = strawberry.field(description="The endpoint's ID.")


@strawberry.input(description="The delivery to attempt again.")
class RedeliverWebhookInput:
    id: strawberry.ID = strawberry.field(description="The delivery's ID (its webhook-id).")


@strawberry.input(description="The endpoint to send a webhook.test event to.")
class SendTestWebhookInput:
    id: strawberry.ID = strawberry.field(description="The endpoint's ID.")


@strawberry.type(description="The endpoint created and its secret, or why none was.")
class CreateWebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(description="The endpoint; null when refused.")
    secret: str | None = strawberry.field(
        description="whsec_...: verify deliveries with it. Shown this once; the service cannot show it again."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was created; empty on success.")


@strawberry.type(description="The endpoint changed, or why it was not.")
class UpdateWebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(description="The endpoint now; null when refused.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed; empty on success.")


@strawberry.type(description="The endpoint deleted, or why it was not.")
class DeleteWebhookEndpointPayload:
    deleted_id: strawberry.ID | None = strawberry.field(description="The deleted endpoint's ID; null when refused.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was deleted; empty on success.")


@strawberry.type(description="The new secret, or why there is none.")
class RotateWebhookSecretPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(description="The endpoint; null when refused.")
    secret: str | None = strawberry.field(
        description="The new whsec_... secret, shown once. The old one signs beside it for 24 hours."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed; empty on success.")


@strawberry.type(description="The delivery, due again now, or why not.")
class RedeliverWebhookPayload:
    delivery: WebhookDelivery | None = strawberry.field(description="The delivery, PENDING; null when refused.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed; empty on success.")


@strawberry.type(description="The webhook.test delivery, or why there is none.")
class SendTestWebhookPayload:
    delivery: WebhookDelivery | None = strawberry.field(description="The test delivery, PENDING; null when refused.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was sent; empty on success.")


@strawberry.type
class WebhookQueries:
    @strawberry.field(
        permission_classes=TRANSFERS,
        description="The tenant's webhook endpoints, oldest first (a tenant-wide operator's; others: FORBIDDEN).",
    )
    async def webhook_endpoints(
        self,
        info: strawberry.Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> WebhookEndpointConnection:  # type: ignore[valid-type]
        operator = await manager(info)
        return await WebhookEndpointConnection.page(
            webhook_endpoints.endpoints_of(operator), "webhookEndpoints", "id", first, after,
            lambda rows: [WebhookEndpoint.of(e) for e in rows],
        )


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(permission_classes=TRANSFERS, description="Add an endpoint; its secret is in the payload, once.")
    async def create_webhook_endpoint(
        self, info: strawberry.Info, input: Annotated[CreateWebhookEndpointInput, strawberry.argument(description="The URL, the events, a note.")]  # noqa: A002
    ) -> CreateWebhookEndpointPayload:
        created, problems = await webhook_endpoints.create(
            await info.context.operator(), input.url, input.events, input.description
        )
        if created is None:
            return CreateWebhookEndpointPayload(endpoint=None, secret=None, user_errors=_errors(problems))
        return CreateWebhookEndpointPayload(endpoint=WebhookEndpoint.of(created.endpoint), secret=created.secret, user_errors=[])

    @strawberry.mutation(permission_classes=TRANSFERS, description="Change an endpoint's URL, events, note, or whether it is enabled.")
    async def update_webhook_endpoint(
        self, info: strawberry.Info, input: Annotated[UpdateWebhookEndpointInput, strawberry.argument(description="The endpoint, and what to change.")]  # noqa: A002
    ) -> UpdateWebhookEndpointPayload:
        endpoint, problems = await webhook_endpoints.update(
            await info.context.operator(), pk_of(input.id, "WebhookEndpoint"),
            url=input.url, events=input.events, description=input.description, enabled=input.enabled,
        )
        return UpdateWebhookEndpointPayload(
            endpoint=WebhookEndpoint.of(endpoint) if endpoint else None, user_errors=_errors(problems)
        )

    @strawberry.mutation(permission_classes=TRANSFERS, description="Delete an endpoint and its deliveries.")
    async def delete_webhook_endpoint(
        self, info: strawberry.Info, input: Annotated[DeleteWebhookEndpointInput, strawberry.argument(description="The endpoint.")]  # noqa: A002
    ) -> DeleteWebhookEndpointPayload:
        deleted, problems = await webhook_endpoints.delete(await info.context.operator(), pk_of(input.id, "WebhookEndpoint"))
        return DeleteWebhookEndpointPayload(
            deleted_id=strawberry.ID(to_global_id("WebhookEndpoint", deleted)) if deleted else None,
            user_errors=_errors(problems),
        )

    @strawberry.mutation(
        permission_classes=TRANSFERS, description="A new secret, shown once; the old one signs beside it for 24 hours."
    )
    async def rotate_webhook_secret(
        self, info: strawberry.Info, input: Annotated[RotateWebhookSecretInput, strawberry.argument(description="The endpoint.")]  # noqa: A002
    ) -> RotateWebhookSecretPayload:
        rotated, problems = await webhook_endpoints.rotate(await info.context.operator(), pk_of(input.id, "WebhookEndpoint"))
        if rotated is None:
            return RotateWebhookSecretPayload(endpoint=None, secret=None, user_errors=_errors(problems))
        return RotateWebhookSecretPayload(endpoint=WebhookEndpoint.of(rotated.endpoint), secret=rotated.secret, user_errors=[])

    @strawberry.mutation(permission_classes=TRANSFERS, description="Attempt a delivery again now, with the same webhook-id.")
    async def redeliver_webhook(
        self, info: strawberry.Info, input: Annotated[RedeliverWebhookInput, strawberry.argument(description="The delivery.")]  # noqa: A002
    ) -> RedeliverWebhookPayload:
        delivery, problems = await webhook_deliveries.redeliver(
            await info.context.operator(), pk_of(input.id, "WebhookDelivery")
        )
        if delivery is None:
            return RedeliverWebhookPayload(delivery=None, user_errors=_errors(problems))
        await _offer(info, delivery)
        return RedeliverWebhookPayload(delivery=WebhookDelivery.of(delivery), user_errors=[])

    @strawberry.mutation(permission_classes=TRANSFERS, description="Send a webhook.test event to an endpoint.")
    async def send_test_webhook(
        self, info: strawberry.Info, input: Annotated[SendTestWebhookInput, strawberry.argument(description="The endpoint.")]  # noqa: A002
    ) -> SendTestWebhookPayload:
        delivery, problems = await webhook_deliveries.send_test(
            await info.context.operator(), pk_of(input.id, "WebhookEndpoint")
        )
        if delivery is None:
            return SendTestWebhookPayload(delivery=None, user_errors=_errors(problems))
        await _offer(info, delivery)
        return SendTestWebhookPayload(delivery=WebhookDelivery.of(delivery), user_errors=[])
