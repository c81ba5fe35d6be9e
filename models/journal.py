"""The journal: what each applied pair did, so that a transfer can be reverted.

Written by the engine in the transaction that applies the pair, set-based
(statements per storage table, never per record): a `JournalMove` row for
every owner column a pair reassigned, and for every record an OVERWRITE
deleted, a copy of the whole row in the storage's `removed` table, from where
a revert puts it back as it was. A transfer's journal is purged when its
undo window (`settings.REVERT_DAYS`) ends.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class JournalMove(Model):
    """One owner column of one record that a pair reassigned from `previous_owner`."""

    id = fields.BigIntField(primary_key=True)
    item: fields.ForeignKeyRelation = fields.ForeignKeyField("models.TransferItem", related_name="journal", db_index=True)
    data_type = fields.CharField(max_length=64)
    owner_column = fields.CharField(max_length=64)
    record_id = fields.BigIntField()
    previous_owner_id = fields.IntField()

    class Meta:
        table = "journal_move"


class RemovedOwnedRecord(Model):
    """An `owned_record` row that an OVERWRITE deleted, as it was."""

    journal_id = fields.BigIntField(primary_key=True)
    item: fields.ForeignKeyRelation = fields.ForeignKeyField("models.TransferItem", related_name="removed_records", db_index=True)
    id = fields.BigIntField()
    data_type = fields.CharField(max_length=64)
    owner_id = fields.IntField()
    payload = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    class Meta:
        table = "owned_record_removed"


class RemovedSchedule(Model):
    """An `agent_schedule` row that an OVERWRITE deleted, as it was."""

    journal_id = fields.BigIntField(primary_key=True)
    item: fields.ForeignKeyRelation = fields.ForeignKeyField("models.TransferItem", related_name="removed_schedules", db_index=True)
    id = fields.BigIntField()
    user_id = fields.IntField()
    pattern = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    class Meta:
        table = "agent_schedule_removed"
