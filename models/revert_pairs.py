"""Reverting pairs: whether a transfer can be reverted, what reverting each pair would do, and doing it.

A revert is a transfer of kind REVERT whose items are the succeeded pairs of
the original, each played back from the journal (models/journal.py) in one
transaction: the records the pair moved and that the original target still
holds in the same column go back to the original source; the records an
OVERWRITE deleted are put back for the original target; whatever moved on
since stays where it is (skipped). The plan, the start and each pair just
before it is reverted all ask `effects`, so they can never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from models import engine, settings
from models.clock import now
from models.fences.tortoise import connection
from models.rules import Problem, describe
from models.sql import Statement, literal
from models.transfers import ItemStatus, Transfer, TransferItem, TransferKind
from models.userdata import BY_KEY, DataType, Storage, by_storage


ALREADY_REVERTED = Problem("ALREADY_REVERTED", "This transfer has already been reverted.")
JOURNAL_GONE = Problem(
    "REVERT_EXPIRED", "The undo window of the original transfer has ended: this pair can no longer be reverted."
)



def window_end(transfer: Transfer) -> datetime | None:
    """When the transfer's undo window ends (whether or not it is revertible otherwise)."""
    if transfer.finished_at is None:
        return None
    return transfer.finished_at + timedelta(days=settings.REVERT_DAYS)


async def original(transfer: Transfer) -> Transfer:
    """The transfer a REVERT undoes, through the retries of that revert."""
    seen = transfer
    while seen.revert_of_id is None:
        seen = await Transfer.get(id=seen.retry_of_id)  # a REVERT has one or the other
    return await Transfer.get(id=seen.revert_of_id)


def refusal(transfer: Transfer, reverted: bool) -> Problem | None:
    """Why `transfer` cannot be reverted now (`reverted`: a revert of it exists); None if it can."""
    if transfer.kind is TransferKind.REVERT:
        return Problem("NOT_REVERTIBLE", "A revert cannot itself be reverted.")
    if not transfer.status.finished:
        return Problem("NOT_REVERTIBLE", "The transfer is still queued or running; it can be reverted once it has finished.")
    if transfer.succeeded_pairs == 0:
        return Problem("NOT_REVERTIBLE", "No pair of this transfer was applied: there is nothing to revert.")
    if reverted:
        return ALREADY_REVERTED
    end = window_end(transfer)
    if end is not None and end <= now():
        return Problem(
            "REVERT_EXPIRED",
            f"The transfer can no longer be reverted: its undo window ended at {end.isoformat(timespec='seconds')}.",
        )
    if not transfer.journaled:
        return Problem(
            "NOT_REVERTIBLE",
            "This transfer was not journaled (it ran while undo was off, or before undo existed): it cannot be reverted.",
        )
    return None


def revertible_until(transfer: Transfer, reverted: bool) -> datetime | None:
    """The end of the undo window, or None when the transfer cannot be reverted."""
    return None if refusal(transfer, reverted) else window_end(transfer)


@dataclass
class PairEffect:
    """What reverting one applied pair would do now, per data type key."""

    item: TransferItem  # the original pair (source and target loaded)
    returns: dict[str, int] = field(default_factory=dict)
    restores: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    conflicts: list[Problem] = field(default_factory=list)


def _types_of(item: TransferItem) -> list[DataType]:
    keys = set(item.moved) | set(item.overwritten)
    return [dt for dt in engine.chosen(sorted(keys))]


async def effects(items: Sequence[TransferItem], db: BaseDBAsyncClient | None = None) -> list[PairEffect]:
    """What reverting each of `items` (original pairs, users loaded) would do now.

    A constant number of queries whatever the number of pairs: per storage table,
    one grouped count of the journaled records each original target still holds
    in the same column, and for a table with a unique owner, who owns a row now.
    """
    found = {item.id: PairEffect(item) for item in items}
    types = sorted({dt for item in items for dt in _types_of(item)}, key=lambda dt: dt.key)
    conn = db or connection(TransferItem)
    for storage, here in by_storage(types).items():
        keys = [dt.key for dt in here]
        for item_id, key, n in await _still_held(conn, storage, keys, list(found)):
            found[item_id].returns[key] = n
        if storage.unique_owner:
            await _unique_conflicts(conn, storage, here, found.values())
    for effect in found.values():
        effect.restores = dict(effect.item.overwritten)
        effect.skipped = {
            key: n - effect.returns.get(key, 0) for key, n in effect.item.moved.items() if n > effect.returns.get(key, 0)
        }
    return list(found.values())


async def _still_held(db: BaseDBAsyncClient, storage: Storage, keys: list[str], item_ids: list[int]) -> list[tuple]:
    """(item, data type, records) journaled by each item that its original target still holds."""
    q = Statement(db)
    column = " ".join(f"WHEN {literal(c)} THEN r.{c}" for c in storage.owner_columns)
    # A record is journaled once per owner column it moved in: count it once (the sort
    # that costs is needed only where a table has several owner columns).
    records = "COUNT(DISTINCT r.id)" if len(storage.owner_columns) > 1 else "COUNT(*)"
    ids, record = q.each_id("j.record_ids", "e")
    return await q.rows(
        f"SELECT j.item_id, j.data_type, {records} FROM journal_move j CROSS JOIN {ids} "
        f"JOIN transfer_item it ON it.id = j.item_id JOIN {storage.table} r ON r.id = {record} "
        f"WHERE {q.isin('j.item_id', item_ids)} AND {q.isin('j.data_type', keys)} "
        f"AND (CASE j.owner_column {column} END) = it.target_id GROUP BY j.item_id, j.data_type"
    )


async def _unique_conflicts(
    db: BaseDBAsyncClient, storage: Storage, types: list[DataType], pairs: Sequence[PairEffect]
) -> None:
    """A user owns at most one row here: a revert must not hand anyone a second one."""
    keys = [dt.key for dt in types]
    users = {pk for e in pairs for pk in (e.item.source_id, e.item.target_id)}
    q = Statement(db)
    (column,) = storage.owner_columns
    owning = {row[0] for row in await q.rows(f"SELECT {column} FROM {storage.table} WHERE {q.isin(column, list(users))}")}
    name = ", ".join(dt.name for dt in types)
    for effect in pairs:
        returning = sum(effect.returns.get(k, 0) for k in keys)
        restoring = sum(effect.item.overwritten.get(k, 0) for k in keys)
        if returning and effect.item.source_id in owning:
            who = describe(effect.item.source)
            effect.conflicts.append(_conflict(f"{who} has {name} of their own since the transfer; it cannot take back the transferred one."))
        if restoring and effect.item.target_id in owning and not returning:
            who = describe(effect.item.target)
            effect.conflicts.append(_conflict(f"{who} has new {name} since the transfer; the deleted one cannot be put back."))


def _conflict(message: str) -> Problem:
    return Problem("REVERT_CONFLICT", f"{message} Nothing of this pair was reverted.")


class RevertConflict(Exception):
    """Putting a pair back broke a constraint of the data (found by the database itself)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


async def apply_revert(effect: PairEffect, db: BaseDBAsyncClient) -> None:
    """Play one original pair back, inside the caller's transaction.

    Per storage table, one UPDATE returning the records still held by the original
    target in their journaled column, then one INSERT putting back the rows the
    pair deleted: in that order, so a unique owner is free again before its old row returns.
    """
    item = effect.item
    for storage, types in by_storage(_types_of(item)).items():
        keys = [dt.key for dt in types]
        try:
            if any(effect.returns.get(k) for k in keys):
                q = Statement(db)
                await q.run(_return_sql(q, storage, keys, item))
            if any(item.overwritten.get(k) for k in keys):
                q = Statement(db)
                columns = engine.row_columns(storage)
                rows, values = q.each_row("j.rows", "r", storage.table, columns)
                await q.run(
                    f"INSERT INTO {storage.table} ({', '.join(columns)}) SELECT {', '.join(values)} "
                    f"FROM journal_removed j CROSS JOIN {rows} "
                    f"WHERE j.item_id = {q.p(item.id)} AND j.table_name = {literal(storage.table)}"
                )
        except IntegrityError as exc:
            names = ", ".join(BY_KEY[k].name for k in keys)
            raise RevertConflict(_conflict(f"Putting back {names} would break a rule of the data ({type(exc).__name__}).")) from exc


def _return_sql(q: Statement, storage: Storage, keys: list[str], item: TransferItem) -> str:
    """Every owner column the pair moved and the original target still holds goes back to the source."""

    def journaled(column: str) -> str:
        ids, record = q.each_id("j.record_ids", "e")
        return (
            f"SELECT {record} FROM journal_move j CROSS JOIN {ids} WHERE j.item_id = {q.p(item.id)} "
            f"AND j.owner_column = {literal(column)} AND {q.isin('j.data_type', keys)}"
        )

    sets = ", ".join(
        f"{c} = CASE WHEN {c} = {q.p(item.target_id)} AND id IN ({journaled(c)}) THEN {q.p(item.source_id)} ELSE {c} END"
        for c in storage.owner_columns
    )
    held = " OR ".join(f"({c} = {q.p(item.target_id)} AND id IN ({journaled(c)}))" for c in storage.owner_columns)
    return f"UPDATE {storage.table} SET {sets} WHERE {held}"


def revert_message(item: TransferItem) -> str:
    """The success message of a REVERT pair (its source is the original target)."""
    returned, restored, skipped = (sum(d.values()) for d in (item.moved, item.restored, item.skipped))
    text = (
        f"Reverted the transfer of {describe(item.target)}'s data to {describe(item.source)}: "
        f"{returned} records returned, {restored} restored"
    )
    return text + (f", {skipped} left where they are (they moved on since)." if skipped else ".")


async def succeeded_pairs(transfer: Transfer) -> list[TransferItem]:
    return await (
        TransferItem.filter(transfer_id=transfer.id, status=ItemStatus.SUCCEEDED)
        .select_related("source", "target")
        .order_by("position")
    )


def impact_totals(pairs: Sequence[PairEffect]) -> list[tuple[DataType, int, int, int]]:
    """(data type, returns, restores, skipped) summed over `pairs`, in registry order, nonzero only."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for effect in pairs:
        for i, part in enumerate((effect.returns, effect.restores, effect.skipped)):
            for key, n in part.items():
                totals[key][i] += n
    return [(dt, *totals[dt.key]) for dt in engine.chosen(list(totals))]  # type: ignore[misc]
