"""Purging what has outlived its use: the journals of transfers whose undo window has
ended, and idempotency keys past their 24 hours.

Every worker runs `purge` every `settings.PURGE_SECONDS` (jobs/worker.py), in short
set-based transactions of at most `BATCH_ROWS` rows per journal table, since a journal
may be large; the one that takes a transfer's last rows marks it `journaled = false`.
Workers purging at once take different transfers (PostgreSQL: `FOR UPDATE SKIP LOCKED`;
SQLite: each step starts with a write, so they run in turn).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from models import idempotency, settings
from models.clock import now
from models.fences.tortoise import pk_column, table_name
from models.journal import JOURNAL_TABLES
from models.sql import Statement
from models.transfers import ACTIVE_STATUSES

log = logging.getLogger(__name__)

# Rows of one journal table deleted per transaction (a row holds the IDs of one data
# type's records moved by a pair, or the rows a pair deleted from one table), and
# transfers looked at per transaction: each step is a short transaction whatever the
# size of a journal.
BATCH_ROWS = 1_000
BATCH_TRANSFERS = 100
# A revert whose start was checked just before the window ended commits a moment
# later and then needs the journal: the purge leaves a journal this much longer.
GRACE = timedelta(minutes=10)


@dataclass
class Purged:
    """What one purge deleted: journal rows per table, transfers no longer journaled, keys."""

    rows: dict[str, int] = field(default_factory=dict)
    transfers: int = 0
    keys: int = 0

    def __bool__(self) -> bool:
        return bool(self.transfers or self.keys or any(self.rows.values()))



async def purge() -> Purged:
    """Delete every journal whose window has ended and every idempotency key past its life."""
    purged = Purged(rows={table_name(model): 0 for model in JOURNAL_TABLES})
    cutoff = now() - timedelta(days=settings.REVERT_DAYS) - GRACE
    while await _journal_step(cutoff, purged):
        pass
    purged.keys = await idempotency.forget_expired(BATCH_ROWS)
    if purged:
        log.info("purged", extra={"journals": purged.transfers, **purged.rows, "idempotency_keys": purged.keys})
    return purged


async def _journal_step(cutoff: datetime, purged: Purged) -> bool:
    """One transaction: a batch of the expired journals' rows, and the transfers left without
    any marked unjournaled. False when there was nothing left to do."""
    async with in_transaction() as db:
        deleted = 0
        for model in JOURNAL_TABLES:
            q = Statement(db)
            table, pk = table_name(model), pk_column(model)
            n = await q.run(
                f"DELETE FROM {table} WHERE {pk} IN (SELECT x.{pk} FROM {table} x "
                f"JOIN transfer_item it ON it.id = x.item_id WHERE it.transfer_id IN ({_expired(q, cutoff)}) "
                f"LIMIT {BATCH_ROWS})"
            )
            purged.rows[table] += n
            deleted += n
        q = Statement(db)
        emptied = " AND ".join(
            f"NOT EXISTS (SELECT 1 FROM transfer_item it JOIN {table_name(m)} x ON x.item_id = it.id "
            f"WHERE it.transfer_id = transfer.id)"
            for m in JOURNAL_TABLES
        )
        marked = await q.run(
            f"UPDATE transfer SET journaled = {q.p(False)} WHERE id IN ({_expired(q, cutoff)}) AND {emptied}"
        )
        purged.transfers += marked
        return bool(deleted or marked)


def _expired(q: Statement, cutoff: datetime) -> str:
    """SQL: the next transfers whose journal is due (journaled, finished before `cutoff`),
    but none whose revert, or a retry of it, is queued or running: that revert reads it."""
    due = f"t.journaled = {q.p(True)} AND t.finished_at <= {q.p(cutoff)}"  # placeholders in text order
    reverting = (
        "SELECT o.transfer_id FROM transfer r JOIN transfer_item ri ON ri.transfer_id = r.id "
        f"JOIN transfer_item o ON o.id = ri.reverts_id WHERE {q.isin('r.status', [s.value for s in ACTIVE_STATUSES])}"
    )
    # PostgreSQL: the transfers this step purges are its own until it commits; another
    # worker's step skips them rather than waits.
    lock = " FOR UPDATE OF t SKIP LOCKED" if q.postgres else ""
    return f"SELECT t.id FROM transfer t WHERE {due} AND t.id NOT IN ({reverting}) ORDER BY t.id LIMIT {BATCH_TRANSFERS}{lock}"
