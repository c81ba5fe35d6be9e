"""The journal: what each applied pair did, so that a transfer can be reverted.

Written by the engine in the statements that apply the pair, in its
transaction, set-based: per data type and owner column, one `JournalMove`
row listing the IDs of the records the pair reassigned; per storage table, one
`JournalRemoved` row holding, as they were, the rows an OVERWRITE deleted, from
where a revert puts them back. A few rows per pair whatever its size, so the
journal costs little beside the move itself (benchmarks/RESULTS.md). A transfer's
journal is purged when its undo window (`settings.REVERT_DAYS`) ends.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class JournalMove(Model):
    """The records of one data type that a pair reassigned in one owner column, from `previous_owner`."""

    id = fields.BigIntField(primary_key=True)
    item: fields.ForeignKeyRelation = fields.ForeignKeyField("models.TransferItem", related_name="journal", db_index=True)
    data_type = fields.CharField(max_length=64)
    owner_column = fields.CharField(max_length=64)
    previous_owner_id = fields.IntField()
    record_ids = fields.JSONField()  # [record ID, ...]

    class Meta:
        table = "journal_move"


class JournalRemoved(Model):
    """The rows of one storage table that an OVERWRITE deleted for a pair, as they were."""

    id = fields.BigIntField(primary_key=True)
    item: fields.ForeignKeyRelation = fields.ForeignKeyField("models.TransferItem", related_name="removed", db_index=True)
    table_name = fields.CharField(max_length=64)
    rows = fields.JSONField()  # [{column: value}, ...]

    class Meta:
        table = "journal_removed"


# Every table of the journal: rows keyed by the transfer item that wrote them.
JOURNAL_TABLES: tuple[type[Model], ...] = (JournalMove, JournalRemoved)
