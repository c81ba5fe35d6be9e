"""Running a transfer: begin it, apply each pair exactly once, finish, cancel.

Every step is one database transaction. Each returns the events it caused;
the caller publishes them after the commit, so nobody sees a state that could
still roll back. The database stays the source of truth: a lost event costs
nothing that a fresh SNAPSHOT does not repair.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import engine, revert_pairs, settings, webhooks
from models.clock import now
from models.db import is_transient, is_unavailable, wait_for_database
from models.fences.tortoise import from_row, model_field
from models.rules import PairCheck, Problem, check_pairs, describe, nothing_to_transfer
from models.sql import Statement, columns, prefixed
from models.tenancy import User
from models.transfer_events import Event, emit, record, recording
from models.transfers import ACTIVE_STATUSES, ItemStatus, Transfer, TransferItem, TransferKind, TransferLock, TransferStatus
from models.userdata import DATA_TYPES

log = logging.getLogger(__name__)

SUCCESS_MESSAGE = "Data Transfer Successful"
FAILURE_MESSAGE = "Errors occurred during data transfer. The user IDs listed below were not transferred."


async def begin(transfer_id: int) -> list[Event]:
    """QUEUED -> RUNNING, once, whichever worker comes first."""
    async with in_transaction() as db:
        changed = await Transfer.filter(id=transfer_id, status=TransferStatus.QUEUED).using_db(db).update(
            status=TransferStatus.RUNNING, started_at=now(), last_event=F("last_event") + 1
        )
        if not changed:
            return []
        return [await record(await Transfer.get(id=transfer_id).using_db(db), "STARTED", db)]


async def process_item(item_id: int) -> list[Event]:
    """Apply one pair exactly once; returns the events to publish.

    The pair's own transaction claims the item (PENDING -> done), so that a second
    worker, or a re-run after a crash, finds nothing to do; eligibility is checked
    again first. Attempts are bounded without a commit of their own: the claim
    counts itself and the attempts this process saw roll back for a passing reason
    (deadlocks, dropped connections), and the attempt of a worker that died mid-pair
    is counted by whoever takes its lane over (models/leases.py). A pair that keeps
    failing ends FAILED after `settings.MAX_ATTEMPTS`, never in a loop. A database
    that went away uses up no attempt: the pair waits for it and is taken up again
    once it is back; a connection cut while the database stays up counts.
    """
    failures = 0
    while True:
        try:
            async with in_transaction() as db:
                return await _process(item_id, db, failures)
        except revert_pairs.RevertConflict as exc:
            failure = exc.problem  # the database refused to put the pair back: it stays as it is
            break
        except Exception as exc:  # noqa: BLE001 - the pair rolled back whole
            if is_transient(exc):
                if not (is_unavailable(exc) and await wait_for_database()):
                    failures += 1
                    log.warning("transfer item %s, attempt %s: %r; trying again", item_id, failures, exc)
                    await asyncio.sleep(0.05 * failures)
                continue
            reference = uuid.uuid4().hex[:12]
            log.exception("transfer item %s failed (reference %s)", item_id, reference)
            failure = Problem(
                "TRANSFER_ERROR",
                f"The pair could not be applied and was rolled back; nothing of it was changed "
                f"(error reference {reference}).",
            )
            break
    async with in_transaction() as db:
        return await _process(item_id, db, failures, forced=failure)


TOO_MANY_ATTEMPTS = Problem(
    "TRANSFER_ERROR",
    f"The pair could not be applied in {settings.MAX_ATTEMPTS} attempts; nothing of it was changed.",
)


@dataclass
class _Pair:
    """A claimed pair and what applying it needs, loaded in two statements."""

    item: TransferItem
    transfer: Transfer
    operator: User | None
    source_user_id: int
    target_user_id: int


async def _claim(item_id: int, db: BaseDBAsyncClient, failures: int) -> _Pair | None:
    """Claim a pending pair (PENDING -> FAILED, until it ends otherwise) in the pair's
    transaction, so that a second worker, or a re-run, finds nothing to do; count this
    attempt and the `failures` before it that rolled back. Load what applying it needs
    with it: one statement on PostgreSQL, two on SQLite."""
    q = Statement(db)
    claim = (
        f"UPDATE transfer_item SET status = 'FAILED', finished_at = {q.p(now())}, "
        f"attempts = attempts + {1 + failures} WHERE id = {q.p(item_id)} AND status = 'PENDING' RETURNING *"
    )
    load = (
        f"SELECT {columns(TransferItem, 'i')}, {columns(Transfer, 't')}, {columns(User, 'o')}, "
        "s.user_id AS source_user_id, g.user_id AS target_user_id FROM {items} i "
        "JOIN transfer t ON t.id = i.transfer_id LEFT JOIN app_user o ON o.id = t.requested_by_id "
        "JOIN app_user s ON s.id = i.source_id JOIN app_user g ON g.id = i.target_id"
    )
    if q.postgres:
        found = await q.dicts(f"WITH claimed AS ({claim}) {load.format(items='claimed')}")
    elif await q.rows(claim):
        q = Statement(db)
        found = await q.dicts(f"{load.format(items='transfer_item')} WHERE i.id = {q.p(item_id)}")
    else:
        found = []
    if not found:
        return None
    (row,) = found
    operator = from_row(User, prefixed(row, "o")) if row["o__id"] is not None else None
    return _Pair(
        from_row(TransferItem, prefixed(row, "i")),
        from_row(Transfer, prefixed(row, "t")),
        operator,
        row["source_user_id"],
        row["target_user_id"],
    )


async def _process(item_id: int, db: BaseDBAsyncClient, failures: int, forced: Problem | None = None) -> list[Event]:
    pair = await _claim(item_id, db, failures)
    if pair is None:
        return []
    item, transfer = pair.item, pair.transfer
    if forced is None and item.attempts > settings.MAX_ATTEMPTS:
        forced = TOO_MANY_ATTEMPTS
    item.transfer = transfer
    if forced:
        problems = [forced]
    else:
        check = await _recheck(pair, db)
        item.source, item.target = check.source, check.target
        problems = check.problems
    if not problems and transfer.kind is TransferKind.REVERT:
        problems = await _revert(item, db)
    if problems:
        item.error_code = problems[0].code
        item.error_message = " ".join(p.message for p in problems)
    elif transfer.kind is not TransferKind.REVERT:
        done = await engine.apply_pair(
            item.source_id,
            item.target_id,
            db,
            types=engine.chosen(transfer.data_types),
            journal_item=item.id if transfer.journaled else None,
        )
        item.moved = {i.data_type.key: i.moves for i in done if i.moves}
        item.overwritten = {i.data_type.key: i.deletes for i in done if i.deletes}
        if item.moved:
            item.status = ItemStatus.SUCCEEDED
        else:
            # The source was emptied since the start. An empty source changes nothing
            # (an OVERWRITE only replaces), so the engine's outcome is the re-check of
            # NOTHING_TO_TRANSFER, in this transaction, without queries of its own.
            problem = nothing_to_transfer(item.source)
            item.error_code, item.error_message = problem.code, problem.message
    ok = item.status is ItemStatus.SUCCEEDED
    transfer, event = await _settle(
        item,
        ok,
        db,
        "ITEM_SUCCEEDED" if ok else "ITEM_FAILED",
        source_user_id=pair.source_user_id,
        target_user_id=pair.target_user_id,
        error_code=item.error_code,
        message=_item_message(item) if ok else item.error_message,
    )
    events = [replace(event, records=(item.moved, item.overwritten) if ok else None)]
    if transfer.processed_pairs == transfer.total_pairs and transfer.status in ACTIVE_STATUSES:
        events.append(await _finish(transfer, db))
    return events


_OUTCOME = ("status", "error_code", "error_message", "moved", "overwritten", "restored", "skipped")


async def _settle(item: TransferItem, ok: bool, db: BaseDBAsyncClient, kind: str, **event: Any) -> tuple[Transfer, Event]:
    """Record the pair's outcome, add it to the transfer's counters, and record its event
    (`kind`, and `event`: the fields that the pair decides); returns the transfer now and the event.
    One statement on PostgreSQL, three on SQLite."""
    q = Statement(db)
    fields = {name: model_field(TransferItem, name) for name in _OUTCOME}
    sets = ", ".join(f"{name} = {q.p(fields[name].to_db_value(getattr(item, name), item))}" for name in _OUTCOME)
    save = f"UPDATE transfer_item SET {sets} WHERE id = {q.p(item.id)}"
    count = (
        f"UPDATE transfer SET processed_pairs = processed_pairs + 1, succeeded_pairs = succeeded_pairs + {int(ok)}, "
        f"failed_pairs = failed_pairs + {int(not ok)}, last_event = last_event + 1 WHERE id = {{transfer}} RETURNING *"
    )
    at = now()
    if q.postgres:
        (row,) = await q.dicts(
            f"WITH saved AS ({save}), counted AS ({count.format(transfer=q.p(item.transfer_id))}), "
            f"recorded AS ({recording(q, item.transfer_id, kind, at, 'counted', **event)}) SELECT * FROM counted"
        )
    else:
        await q.run(save)
        q = Statement(db)
        (row,) = await q.dicts(count.format(transfer=q.p(item.transfer_id)))
        q = Statement(db)
        await q.run(recording(q, item.transfer_id, kind, at, "transfer", **event) + f" WHERE id = {q.p(item.transfer_id)}")
    transfer = from_row(Transfer, row)
    return transfer, Event.of(transfer, kind, at=at, **event)


async def _revert(item: TransferItem, db: BaseDBAsyncClient) -> list[Problem]:
    """Play the original pair back from the journal, unless that now conflicts with the data."""
    original = await TransferItem.get(id=item.reverts_id).using_db(db).select_related("source", "target", "transfer")
    if not original.transfer.journaled:  # purged: nothing left to play back (the purge waits for active reverts)
        return [revert_pairs.JOURNAL_GONE]
    (effect,) = await revert_pairs.effects([original], db)
    if effect.conflicts:
        return effect.conflicts
    await revert_pairs.apply_revert(effect, db)
    item.status = ItemStatus.SUCCEEDED
    item.moved, item.restored, item.skipped = effect.returns, effect.restores, effect.skipped
    return []


async def _recheck(pair: _Pair, db: BaseDBAsyncClient) -> PairCheck:
    """The transfer rules for the pair as the world is now, in the pair's transaction."""
    operator = pair.operator
    check = PairCheck(pair.source_user_id, pair.target_user_id, pair.item.row_number)
    if operator is None or not operator.may_transfer:
        check.problems.append(
            Problem("FORBIDDEN", "The operator who requested this transfer may no longer transfer data.")
        )
        return check
    (check,) = await check_pairs(
        operator,
        [(pair.source_user_id, pair.target_user_id, pair.item.row_number)],
        ignore_locks_of=pair.transfer.id,
        using_db=db,
        sources_checked_by_engine=True,  # see _process
        types=engine.chosen(pair.transfer.data_types),
    )
    return check


def _item_message(item: TransferItem) -> str:
    if item.reverts_id is not None:
        return revert_pairs.revert_message(item)
    moved = sum(item.moved.values())
    overwritten = sum(item.overwritten.values())
    return (
        f"Transferred the data of {describe(item.source)} to {describe(item.target)}"
        f"{_choice_said(item.transfer.data_types)}: {moved} records moved, {overwritten} overwritten."
    )


def _choice_said(keys: list[str] | None) -> str:
    """The data types chosen, for a message; nothing when the transfer moves every type."""
    types = engine.chosen(keys)
    if len(types) == len(DATA_TYPES):
        return ""
    return f" (chosen data types: {', '.join(dt.name for dt in types)})"


async def _finish(transfer: Transfer, db: BaseDBAsyncClient) -> Event:
    if transfer.failed_pairs == 0:
        status, message = TransferStatus.SUCCEEDED, SUCCESS_MESSAGE
    elif transfer.succeeded_pairs == 0:
        status, message = TransferStatus.FAILED, FAILURE_MESSAGE
    else:
        status, message = TransferStatus.PARTIALLY_FAILED, FAILURE_MESSAGE
    transfer.status, transfer.message, transfer.finished_at = status, message, now()
    await transfer.save(using_db=db, update_fields=["status", "message", "finished_at"])
    await TransferLock.filter(transfer_id=transfer.id).using_db(db).delete()
    return await _settled(transfer, db)


async def _settled(transfer: Transfer, db: BaseDBAsyncClient) -> Event:
    """The terminal event of a transfer whose ending this transaction settles, and its
    webhooks' deliveries beside it: the one place every ending passes through."""
    await webhooks.announce_end(transfer, db)
    return await emit(transfer, TransferStatus(transfer.status).value, db, message=transfer.message)


async def _cancel(transfer: Transfer) -> tuple[list[Event], list[Problem]]:
    """Stop a queued or running transfer after the pair in flight.

    Items are updated before the transfer row, in the same order as a worker
    takes them, so the two never deadlock; a pair being applied keeps its lock
    until it commits and is then left as it ended.
    """
    async with in_transaction() as db:
        await TransferItem.filter(transfer_id=transfer.id, status=ItemStatus.PENDING).using_db(db).update(
            status=ItemStatus.CANCELLED, finished_at=now()
        )
        stopped = await Transfer.filter(id=transfer.id, status__in=ACTIVE_STATUSES).using_db(db).update(
            status=TransferStatus.CANCELLED, finished_at=now()
        )
        if not stopped:
            raise _AlreadyFinished
        fresh = await Transfer.get(id=transfer.id).using_db(db)
        fresh.message = (
            f"Transfer cancelled: {fresh.succeeded_pairs} of {fresh.total_pairs} pairs were applied "
            f"before it stopped; the others were not transferred."
        )
        await fresh.save(using_db=db, update_fields=["message"])
        await TransferLock.filter(transfer_id=transfer.id).using_db(db).delete()
        event = await _settled(fresh, db)
    return [event], []


class _AlreadyFinished(Exception):
    pass


async def cancel(transfer: Transfer) -> tuple[list[Event], list[Problem]]:
    try:
        return await _cancel(transfer)
    except _AlreadyFinished:
        status = TransferStatus((await Transfer.get(id=transfer.id)).status).value
        return [], [Problem("TRANSFER_FINISHED", f"The transfer has already finished ({status}); it cannot be cancelled.")]

