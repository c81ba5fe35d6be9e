"""Webhooks: a tenant's endpoints, and the outbox of deliveries written when a transfer ends.

A delivery row is written by the very transaction that settles a transfer's
terminal status (`announce_end`, called from models/running.py), so an ending is
announced exactly as often as it happened: a crash between the commit and the
send delays the delivery, never loses or repeats it. The row is the truth; the
workers send it (jobs/webhooks.py) and record each attempt on it.
"""

from __future__ import annotations

import enum
import json

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from models.clock import now
from models.global_ids import to_global_id
from models.transfers import ItemStatus, Transfer, TransferItem, TransferKind, TransferStatus

# The events an endpoint may subscribe to: one per terminal status, and the test.
TRANSFER_EVENTS = {
    TransferStatus.SUCCEEDED: "transfer.succeeded",
    TransferStatus.PARTIALLY_FAILED: "transfer.partially_failed",
    TransferStatus.FAILED: "transfer.failed",
    TransferStatus.CANCELLED: "transfer.cancelled",
}
TEST_EVENT = "webhook.test"
EVENTS = tuple(TRANSFER_EVENTS.values())


class DeliveryStatus(str, enum.Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class WebhookEndpoint(Model):
    """Where a tenant's transfer endings are sent, and with which secret (encrypted: see webhook_secrets.py)."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation = fields.ForeignKeyField("models.Tenant", related_name="webhook_endpoints")
    url = fields.CharField(max_length=2048)
    events = fields.JSONField()
    description = fields.TextField(null=True)
    enabled = fields.BooleanField(default=True)
    disabled_reason = fields.TextField(null=True)
    secret = fields.TextField()
    # After a rotation, the secret before it signs beside the new one until this time.
    previous_secret = fields.TextField(null=True)
    previous_secret_until = fields.DatetimeField(null=True)
    # The first failed attempt since the last success (or since creation): 3 days of only
    # failures disable the endpoint.
    failing_since = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_endpoint"
        indexes = (("tenant_id", "enabled"),)


class WebhookDelivery(Model):
    """One event for one endpoint: its body as sent on every attempt, and where its attempts are."""

    id = fields.IntField(primary_key=True)
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name="deliveries"
    )
    event = fields.CharField(max_length=64)
    transfer: fields.ForeignKeyNullableRelation[Transfer] = fields.ForeignKeyField(
        "models.Transfer", related_name="webhook_deliveries", null=True
    )
    body = fields.TextField()
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    last_response_status = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    next_attempt_at = fields.DatetimeField(null=True)
    # Set while a worker sends it: another takes it over only once this has passed.
    lease_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_delivery"
        # An ending is announced to an endpoint once, whatever runs twice.
        unique_together = (("endpoint", "transfer", "event"),)
        indexes = (("status", "next_attempt_at"), ("endpoint_id", "id"))


def body(event: str, data: dict) -> str:
    """The JSON a receiver gets: the event's type, when it happened, and its data."""
    return json.dumps({"type": event, "timestamp": now().isoformat(), "data": data}, separators=(",", ":"))


async def transfer_data(transfer: Transfer, db: BaseDBAsyncClient) -> dict:
    """What a receiver is told of a transfer: its counters and outcome, users by ID only."""
    failed = await (
        TransferItem.filter(transfer_id=transfer.id, status=ItemStatus.FAILED)
        .using_db(db)
        .order_by("position")
        .values_list("source__user_id", "target__user_id")
    )
    failed_user_ids: list[int] = []
    for pair in failed:
        failed_user_ids += [uid for uid in pair if uid not in failed_user_ids]
    return {
        "transfer": {
            "id": to_global_id("Transfer", transfer.id),
            "kind": TransferKind(transfer.kind).value,
            "status": TransferStatus(transfer.status).value,
            "message": transfer.message,
            "totalPairs": transfer.total_pairs,
            "succeededPairs": transfer.succeeded_pairs,
            "failedPairs": transfer.failed_pairs,
            "failedUserIds": failed_user_ids,
            "revertOf": await _revert_of(transfer, db),
            "startedAt": transfer.started_at.isoformat() if transfer.started_at else None,
            "finishedAt": transfer.finished_at.isoformat() if transfer.finished_at else None,
        }
    }


async def _revert_of(transfer: Transfer, db: BaseDBAsyncClient) -> str | None:
    """The transfer a REVERT undoes (through the retries of that revert), as the API names it."""
    if TransferKind(transfer.kind) is not TransferKind.REVERT:
        return None
    seen = transfer
    while seen.revert_of_id is None:
        seen = await Transfer.get(id=seen.retry_of_id).using_db(db)
    return to_global_id("Transfer", seen.revert_of_id)


async def announce_end(transfer: Transfer, db: BaseDBAsyncClient) -> None:
    """One delivery per enabled endpoint of the tenant subscribed to the transfer's ending,
    in the caller's transaction (the one that settles the terminal status)."""
    event = TRANSFER_EVENTS[TransferStatus(transfer.status)]
    endpoints = [
        e.id
        for e in await WebhookEndpoint.filter(tenant_id=transfer.tenant_id, enabled=True).using_db(db)
        if event in e.events
    ]
    if not endpoints:
        return
    sent = body(event, await transfer_data(transfer, db))
    await WebhookDelivery.bulk_create(
        [
            WebhookDelivery(endpoint_id=e, event=event, transfer_id=transfer.id, body=sent, next_attempt_at=now())
            for e in endpoints
        ],
        using_db=db,
    )
