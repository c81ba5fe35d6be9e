"""Transfers, their items, bulk uploads, and the lock rows that decide races.

A `TransferLock` row exists for every user of a queued or running transfer
(`user:<pk>`) and for the tenant's bulk transfer (`bulk`). The unique
constraint on (tenant, key) is what makes USER_BUSY and "one bulk transfer at
a time" hold when requests race, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import enum

from tortoise import fields
from tortoise.expressions import Q, Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.tenancy import User, scope, sees_whole_tenant


class TransferKind(str, enum.Enum):
    SINGLE = "SINGLE"
    BULK = "BULK"
    REVERT = "REVERT"


class TransferStatus(str, enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIALLY_FAILED = "PARTIALLY_FAILED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self not in (TransferStatus.QUEUED, TransferStatus.RUNNING)


class ItemStatus(str, enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE_STATUSES = (TransferStatus.QUEUED, TransferStatus.RUNNING)


class BulkUpload(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation = fields.ForeignKeyField("models.Tenant", related_name="uploads")
    uploaded_by: fields.ForeignKeyRelation = fields.ForeignKeyField("models.User", related_name="uploads")
    filename = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)
    row_count = fields.IntField(default=0)
    pair_count = fields.IntField(default=0)
    error_count = fields.IntField(default=0)
    # File-level errors: [{"code": ..., "message": ...}]
    errors = fields.JSONField(default=list)
    # True: "From User ID, To User ID"; False: "Source User ID, Target User ID" (models/csvfile.py).
    people_form = fields.BooleanField(default=True)

    class Meta:
        table = "bulk_upload"


class BulkUploadRow(Model):
    """A row of an upload that requests a transfer or carries an error."""

    id = fields.IntField(primary_key=True)
    upload: fields.ForeignKeyRelation[BulkUpload] = fields.ForeignKeyField("models.BulkUpload", related_name="rows")
    row_number = fields.IntField()
    # The cells naming the source and the target, as written; the parser decided which is which.
    source_cell = fields.CharField(max_length=255, null=True)
    target_cell = fields.CharField(max_length=255, null=True)
    source: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.User", related_name="upload_rows_as_source", null=True
    )
    target: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.User", related_name="upload_rows_as_target", null=True
    )
    errors = fields.JSONField(default=list)
    has_errors = fields.BooleanField(default=False)

    class Meta:
        table = "bulk_upload_row"
        unique_together = (("upload", "row_number"),)


class Transfer(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation = fields.ForeignKeyField("models.Tenant", related_name="transfers")
    kind = fields.CharEnumField(TransferKind, max_length=16)
    status = fields.CharEnumField(TransferStatus, max_length=20, default=TransferStatus.QUEUED)
    requested_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.User", related_name="requested_transfers", null=True
    )
    # Unique: an upload starts at most one transfer (UPLOAD_ALREADY_USED), decided by the database.
    upload: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.BulkUpload", related_name="transfers", null=True, unique=True
    )
    # Unique: a transfer's failed pairs are retried once (then retry the retry), so a
    # pair that succeeded in a retry is never offered again (ALREADY_RETRIED).
    retry_of: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Transfer", related_name="retries", null=True, unique=True
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    total_pairs = fields.IntField(default=0)
    processed_pairs = fields.IntField(default=0)
    succeeded_pairs = fields.IntField(default=0)
    failed_pairs = fields.IntField(default=0)
    message = fields.TextField(null=True)
    # The data type keys this transfer moves, in registry order; null: every type.
    data_types = fields.JSONField(null=True)
    # Kind REVERT: the transfer it undoes. Unique: a transfer is reverted at most once
    # (ALREADY_REVERTED), decided by the database.
    revert_of: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Transfer", related_name="reverts", null=True, unique=True
    )
    # Whether its pairs were journaled (models/journal.py) and so may be reverted: false
    # for transfers from before the journal, or run with the undo window off.
    journaled = fields.BooleanField(default=False)
    # Sequence number of the transfer's latest event: events are numbered in
    # commit order under this row's lock, whatever order they reach Redis in.
    last_event = fields.IntField(default=0)
    # Not stored: set on a transfer that a resent start (same idempotency key) gets
    # back, so that callers do not count or log it as started a second time.
    replayed: bool = False

    class Meta:
        table = "transfer"
        indexes = (("tenant_id", "created_at"),)


class TransferItem(Model):
    id = fields.IntField(primary_key=True)
    transfer: fields.ForeignKeyRelation[Transfer] = fields.ForeignKeyField("models.Transfer", related_name="items")
    position = fields.IntField()
    # The lane (see TransferLane) that applies this pair: position modulo the transfer's lanes.
    lane = fields.IntField(default=0)
    row_number = fields.IntField(null=True)
    source: fields.ForeignKeyRelation = fields.ForeignKeyField("models.User", related_name="items_as_source")
    target: fields.ForeignKeyRelation = fields.ForeignKeyField("models.User", related_name="items_as_target")
    status = fields.CharEnumField(ItemStatus, max_length=16, default=ItemStatus.PENDING)
    error_code = fields.CharField(max_length=64, null=True)
    error_message = fields.TextField(null=True)
    # {data type key: records} of what this pair moved / deleted; empty until applied.
    moved = fields.JSONField(default=dict)
    overwritten = fields.JSONField(default=dict)
    finished_at = fields.DatetimeField(null=True)
    # Kind REVERT: the pair of the original transfer this one undoes.
    reverts: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.TransferItem", related_name="reverted_by", null=True
    )
    # Kind REVERT, {data type key: records}: deleted target records put back, and
    # journaled records left alone because they moved on since.
    restored = fields.JSONField(default=dict)
    skipped = fields.JSONField(default=dict)
    # Times a worker began this pair; committed apart from the pair, so that the
    # attempts of workers that died mid-pair count too (settings.MAX_ATTEMPTS).
    attempts = fields.IntField(default=0)

    class Meta:
        table = "transfer_item"
        unique_together = (("transfer", "position"),)
        indexes = (("transfer_id", "status"), ("transfer_id", "lane", "status", "position"))


class TransferLane(Model):
    """One sequence of a transfer's pairs, worked by one job at a time under a lease.

    `generation` names the job that owns the lane (see jobs/transfer.py): a job of
    an older generation finds it is stale and stops, so a lane taken over from a
    dead worker is never worked twice. `lease_until` is set while a worker holds the
    lane and renewed by it; null while the lane's job waits in the queue.
    """

    id = fields.IntField(primary_key=True)
    transfer: fields.ForeignKeyRelation[Transfer] = fields.ForeignKeyField("models.Transfer", related_name="lanes")
    lane = fields.IntField()
    generation = fields.IntField(default=1)
    lease_until = fields.DatetimeField(null=True)
    holder = fields.CharField(max_length=200, null=True)  # host:pid of the worker, for operators
    finished = fields.BooleanField(default=False)

    class Meta:
        table = "transfer_lane"
        unique_together = (("transfer", "lane"),)


class EventRecord(Model):
    """Every event of a transfer, written in the transaction that caused it."""

    id = fields.BigIntField(primary_key=True)
    transfer: fields.ForeignKeyRelation[Transfer] = fields.ForeignKeyField("models.Transfer", related_name="events")
    seq = fields.IntField()
    data = fields.JSONField()

    class Meta:
        table = "transfer_event"
        unique_together = (("transfer", "seq"),)


class TransferLock(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation = fields.ForeignKeyField("models.Tenant", related_name="locks")
    key = fields.CharField(max_length=64)
    transfer: fields.ForeignKeyRelation[Transfer] = fields.ForeignKeyField("models.Transfer", related_name="locks", db_index=True)

    class Meta:
        table = "transfer_lock"
        unique_together = (("tenant", "key"),)

    @staticmethod
    def user_key(user_pk: int) -> str:
        return f"user:{user_pk}"

    BULK_KEY = "bulk"


def _hide_outside_scope(operator: User, query: QuerySet, parts: QuerySet, owner: str) -> QuerySet:
    """`query` less the objects one of whose `parts` (items, upload rows) names a user
    outside the operator's scope: what they cannot see stays unknown to them."""
    if sees_whole_tenant(operator):
        return query  # the whole tenant is in scope
    in_scope = Subquery(scope(operator).values("id"))
    hidden = parts.filter(Q(source_id__not_in=in_scope) | Q(target_id__not_in=in_scope)).values(owner)
    return query.exclude(id__in=Subquery(hidden))


def visible_transfers(operator: User) -> QuerySet[Transfer]:
    tenant = operator.tenant_id
    items = TransferItem.filter(transfer__tenant_id=tenant)
    return _hide_outside_scope(operator, Transfer.filter(tenant_id=tenant), items, "transfer_id")


def visible_uploads(operator: User) -> QuerySet[BulkUpload]:
    tenant = operator.tenant_id
    rows = BulkUploadRow.filter(upload__tenant_id=tenant)
    return _hide_outside_scope(operator, BulkUpload.filter(tenant_id=tenant), rows, "upload_id")
