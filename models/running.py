"""A transfer's life: start, run each pair exactly once, finish, cancel.

Every step is one database transaction. Each returns the events it caused;
the caller publishes them after the commit, so nobody sees a state that could
still roll back. The database stays the source of truth: a lost event costs
nothing that a fresh SNAPSHOT does not repair.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import engine, idempotency, leases, revert_pairs, settings
from models.db import is_transient, is_unavailable, wait_for_database
from models.sql import Statement, columns, prefixed
from models.rules import (
    PairCheck,
    Problem,
    check_pairs,
    data_types_problem,
    describe,
    nothing_to_transfer,
    stored_choice,
)
from models.tenancy import User
from models.transfers import (
    ACTIVE_STATUSES,
    EventRecord,
    ItemStatus,
    Transfer,
    TransferItem,
    TransferKind,
    TransferLock,
    TransferStatus,
)
from models.userdata import DATA_TYPES

log = logging.getLogger(__name__)
_FINISHED = frozenset(s.value for s in TransferStatus if s.finished)  # as strings: an Event carries them so

SUCCESS_MESSAGE = "Data Transfer Successful"
FAILURE_MESSAGE = "Errors occurred during data transfer. The user IDs listed below were not transferred."
UPLOAD_ALREADY_USED = Problem(
    "UPLOAD_ALREADY_USED", "This upload has already started a transfer; upload the file again to run it again."
)
ALREADY_RETRIED = Problem(
    "ALREADY_RETRIED", "The failed pairs of this transfer were already retried; retry that transfer instead."
)
BULK_IN_PROGRESS = Problem("BULK_TRANSFER_IN_PROGRESS", "Another bulk transfer of this tenant is queued or running.")


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Event:
    """One transfer event. `seq` numbers a transfer's events in commit order."""

    transfer_id: int
    seq: int
    type: str
    status: str
    total_pairs: int
    processed_pairs: int
    succeeded_pairs: int
    failed_pairs: int
    at: datetime
    source_user_id: int | None = None
    target_user_id: int | None = None
    error_code: str | None = None
    message: str | None = None
    # ITEM_SUCCEEDED, to the worker that applied the pair (its metrics): records moved and
    # deleted per data type. Not published: the item holds them for everyone else.
    records: tuple[dict[str, int], dict[str, int]] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, transfer: Transfer, type_: str, at: datetime | None = None, **extra: object) -> Event:
        return cls(
            transfer_id=transfer.id,
            seq=transfer.last_event,
            type=type_,
            status=TransferStatus(transfer.status).value,
            total_pairs=transfer.total_pairs,
            processed_pairs=transfer.processed_pairs,
            succeeded_pairs=transfer.succeeded_pairs,
            failed_pairs=transfer.failed_pairs,
            at=at or now(),
            **extra,  # type: ignore[arg-type]
        )

    @property
    def terminal(self) -> bool:
        return self.type == self.status and self.status in _FINISHED

    def to_json(self) -> dict:
        data = {**asdict(self), "at": self.at.isoformat()}
        del data["records"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Event:
        return cls(**{**data, "at": datetime.fromisoformat(data["at"])})


async def _emit(transfer: Transfer, type_: str, db: BaseDBAsyncClient, **extra: object) -> Event:
    """Number the next event of `transfer` and record it, inside the caller's transaction."""
    await Transfer.filter(id=transfer.id).using_db(db).update(last_event=F("last_event") + 1)
    await transfer.refresh_from_db(using_db=db)
    return await _record(transfer, type_, db, **extra)


async def _record(transfer: Transfer, type_: str, db: BaseDBAsyncClient, **extra: Any) -> Event:
    event = Event.of(transfer, type_, **extra)
    q = Statement(db)
    data = EventRecord._meta.fields_map["data"].to_db_value(event.to_json(), None)
    await q.run(
        f"INSERT INTO transfer_event (transfer_id, seq, data) VALUES ({q.p(transfer.id)}, {q.p(event.seq)}, {q.p(data)})"
    )
    return event


# --- start ---------------------------------------------------------------


async def create_transfer(
    operator: User,
    kind: TransferKind,
    pairs: Sequence[PairCheck],
    request: idempotency.Request | None = None,
    *,
    bulk: bool | None = None,
    reverts: Sequence[int] | None = None,
    **fields: object,
) -> tuple[Transfer | None, list[Problem]]:
    """Insert the transfer, its idempotency key, its items and its lock rows in one transaction.

    `bulk` (default: a BULK kind) takes the tenant's one bulk slot and several lanes;
    `reverts` names, per pair, the original pair a REVERT item plays back.

    The unique constraints decide races: a request whose key another request with
    the key has just used gets that request's transfer; a user already in a queued
    or running transfer, or a second bulk transfer of the tenant, fails the insert,
    and nothing is created.
    """
    # Always taken in the same order (bulk first, then users by key), so two
    # racing starts collide on a unique constraint instead of deadlocking.
    locks = sorted({TransferLock.user_key(u.id) for c in pairs for u in (c.source, c.target) if u is not None})
    bulk = kind is TransferKind.BULK if bulk is None else bulk
    if bulk:
        locks.insert(0, TransferLock.BULK_KEY)
    lanes = leases.lane_count(bulk, len(pairs))
    try:
        async with in_transaction() as db:
            transfer = await Transfer.create(
                tenant_id=operator.tenant_id,
                kind=kind,
                requested_by=operator,
                total_pairs=len(pairs),
                # A revert is not journaled: it cannot itself be reverted.
                journaled=settings.REVERT_DAYS > 0 and kind is not TransferKind.REVERT,
                using_db=db,
                **fields,
            )
            if request is not None:  # first: racing requests with one key meet here, before the locks
                await idempotency.remember(operator, request, transfer, db)
            await leases.create(transfer.id, lanes, db)
            await TransferItem.bulk_create(
                [
                    TransferItem(
                        transfer=transfer,
                        position=i,
                        lane=i % lanes,
                        row_number=c.row_number,
                        source_id=c.source.id,  # type: ignore[union-attr]
                        target_id=c.target.id,  # type: ignore[union-attr]
                        reverts_id=reverts[i] if reverts else None,
                    )
                    for i, c in enumerate(pairs)
                ],
                batch_size=500,
                using_db=db,
            )
            await TransferLock.bulk_create(
                [TransferLock(tenant_id=operator.tenant_id, key=k, transfer=transfer) for k in locks],
                batch_size=1000,
                using_db=db,
            )
    except IntegrityError:
        if request is not None and (answered := await idempotency.replay(operator, request)) is not None:
            return answered  # the same request, sent twice at once: both get the one transfer
        return None, await _lost_race(operator, locks, fields)
    return transfer, []


async def _lost_race(operator: User, keys: list[str], fields: dict[str, object]) -> list[Problem]:
    """Say which unique constraint decided against this start."""
    for name, problem in (("upload", UPLOAD_ALREADY_USED), ("retry_of", ALREADY_RETRIED), ("revert_of", revert_pairs.ALREADY_REVERTED)):
        if fields.get(name) is not None and await Transfer.exists(**{name: fields[name]}):
            return [problem]
    taken = set(
        await TransferLock.filter(tenant_id=operator.tenant_id, key__in=keys).values_list("key", flat=True)
    )
    if TransferLock.BULK_KEY in taken:
        return [BULK_IN_PROGRESS]
    problems = [
        Problem("USER_BUSY", f"User {describe(user)} is in a transfer that is queued or running.")
        for user in await User.filter(id__in=_lock_pks(taken))
    ]
    # The other transfer may have finished in between: still, this start lost the race.
    return problems or [Problem("USER_BUSY", "A user of this transfer is in a transfer that is queued or running.")]


def _lock_pks(keys: set[str]) -> list[int]:
    return [int(k.split(":", 1)[1]) for k in keys if k.startswith("user:")]


async def start_single(
    operator: User,
    source_user_id: int,
    target_user_id: int,
    idempotency_key: str | None = None,
    data_types: Sequence[str] | None = None,
) -> tuple[Transfer | None, list[Problem]]:
    """Queue one pair, moving `data_types` (keys of DataType; None: every type)."""
    if invalid := data_types_problem(data_types):
        return None, [invalid]
    keys = stored_choice(data_types)
    request, answered = await idempotency.prior(
        operator,
        idempotency_key,
        "startTransfer",
        sourceUserId=source_user_id,
        targetUserId=target_user_id,
        **idempotency.choice(keys),
    )
    if answered is not None:
        return answered
    (check,) = await check_pairs(operator, [(source_user_id, target_user_id, None)], types=engine.chosen(keys))
    if not check.ok:
        return None, check.problems
    return await create_transfer(operator, TransferKind.SINGLE, [check], request, data_types=keys)


# --- run -----------------------------------------------------------------


async def begin(transfer_id: int) -> list[Event]:
    """QUEUED -> RUNNING, once, whichever worker comes first."""
    async with in_transaction() as db:
        changed = await Transfer.filter(id=transfer_id, status=TransferStatus.QUEUED).using_db(db).update(
            status=TransferStatus.RUNNING, started_at=now(), last_event=F("last_event") + 1
        )
        if not changed:
            return []
        return [await _record(await Transfer.get(id=transfer_id).using_db(db), "STARTED", db)]


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
    operator = User._init_from_db(**prefixed(row, "o")) if row["o__id"] is not None else None
    return _Pair(
        TransferItem._init_from_db(**prefixed(row, "i")),
        Transfer._init_from_db(**prefixed(row, "t")),
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


# An event's fields that the transfer's row gives, once its counters have counted the event.
_COUNTED = {"seq": "last_event", **{name: name for name in ("status", "total_pairs", "processed_pairs", "succeeded_pairs", "failed_pairs")}}


async def _settle(item: TransferItem, ok: bool, db: BaseDBAsyncClient, kind: str, **event: Any) -> tuple[Transfer, Event]:
    """Record the pair's outcome, add it to the transfer's counters, and record its event
    (`kind`, and `event`: the fields that the pair decides); returns the transfer now and the event.
    One statement on PostgreSQL (a round trip less per pair), three on SQLite."""
    q = Statement(db)
    fields = TransferItem._meta.fields_map
    sets = ", ".join(f"{name} = {q.p(fields[name].to_db_value(getattr(item, name), item))}" for name in _OUTCOME)
    save = f"UPDATE transfer_item SET {sets} WHERE id = {q.p(item.id)}"
    count = (
        f"UPDATE transfer SET processed_pairs = processed_pairs + 1, succeeded_pairs = succeeded_pairs + {int(ok)}, "
        f"failed_pairs = failed_pairs + {int(not ok)}, last_event = last_event + 1 WHERE id = {{transfer}} RETURNING *"
    )
    at = now()
    if q.postgres:
        own = {"transfer_id": item.transfer_id, "type": kind, **event, "at": at.isoformat()}
        counted = ", ".join(f"'{name}', {column}" for name, column in _COUNTED.items())
        (row,) = await q.dicts(
            f"WITH saved AS ({save}), counted AS ({count.format(transfer=q.p(item.transfer_id))}), "
            "recorded AS (INSERT INTO transfer_event (transfer_id, seq, data) "
            f"SELECT id, last_event, CAST({q.p(json.dumps(own))} AS jsonb) || jsonb_build_object({counted}) FROM counted) "
            "SELECT * FROM counted"
        )
        transfer = Transfer._init_from_db(**row)
        return transfer, Event.of(transfer, kind, at=at, **event)
    await q.run(save)
    q = Statement(db)
    (row,) = await q.dicts(count.format(transfer=q.p(item.transfer_id)))
    transfer = Transfer._init_from_db(**row)
    return transfer, await _record(transfer, kind, db, at=at, **event)


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
    return await _emit(transfer, status.value, db, message=message)


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
        event = await _emit(fresh, "CANCELLED", db, message=fresh.message)
    return [event], []


class _AlreadyFinished(Exception):
    pass


async def cancel(transfer: Transfer) -> tuple[list[Event], list[Problem]]:
    try:
        return await _cancel(transfer)
    except _AlreadyFinished:
        status = TransferStatus((await Transfer.get(id=transfer.id)).status).value
        return [], [Problem("TRANSFER_FINISHED", f"The transfer has already finished ({status}); it cannot be cancelled.")]


async def recorded(transfer_id: int, after: int, until: int | None = None) -> list[Event]:
    """The transfer's events numbered after `after` (up to `until`), in order: the record."""
    query = EventRecord.filter(transfer_id=transfer_id, seq__gt=after)
    if until is not None:
        query = query.filter(seq__lte=until)
    return [Event.from_json(row) for row in await query.order_by("seq").values_list("data", flat=True)]
