"""The purge: a journal goes when its transfer's undo window ends, unless a revert of it
is queued or running; idempotency keys go after their 24 hours; every worker purges."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise.transactions import in_transaction

from graph.core.relay import pk_of
from models import bulk, clock, purge, revert_start, running, settings, starting
from models.idempotency import IdempotencyKey
from models.journal import JOURNAL_TABLES, JournalMove, JournalRemoved
from models.transfers import Transfer, TransferItem
from models.userdata import AgentSchedule
from tests.processes import Workers, until, worker_env
from tests.support import Api, World, run_pairs
from tests.test_idempotency import start as start_with_key
from tests.test_revert import PLAN, REVERT, STATE, give_every_kind, holdings, transfer


async def journal_rows(transfer_pk: int) -> int:
    """Rows of every journal table written by the transfer's pairs."""
    items = await TransferItem.filter(transfer_id=transfer_pk).values_list("id", flat=True)
    return sum([await table.filter(item_id__in=items).count() for table in JOURNAL_TABLES])


async def journaled(transfer_pk: int) -> bool:
    return (await Transfer.get(id=transfer_pk)).journaled


async def expire(transfer_pk: int) -> None:
    """Move the clock on: the transfer finished a day more than its window ago."""
    finished_at = (await Transfer.get(id=transfer_pk)).finished_at
    assert finished_at is not None
    await Transfer.filter(id=transfer_pk).update(finished_at=finished_at - timedelta(days=settings.REVERT_DAYS + 1))


async def applied(world: World, source: int, target: int) -> Transfer:
    """A finished single transfer, applied here (no worker involved)."""
    started, problems = await starting.start_single(world.users[1], source, target)
    assert problems == [] and started is not None
    await run_pairs(started.id)
    return await Transfer.get(id=started.id)


async def test_an_expired_journal_goes_and_an_unexpired_one_stays(api: Api, world: World) -> None:
    await give_every_kind(world)  # moved records in every table, and deleted rows to keep
    await world.give(12, "CCR", 2)
    old = pk_of(await transfer(api, world, 10, 11), "Transfer")
    recent = pk_of(await transfer(api, world, 12, 13), "Transfer")
    assert old and recent and await journal_rows(old) > 0 and await journal_rows(recent) == 1
    await expire(old)

    purged = await purge.purge()
    assert await journal_rows(old) == 0 and not await journaled(old)
    assert await journal_rows(recent) == 1 and await journaled(recent)
    assert purged.transfers >= 1  # other tests' expired journals go too
    assert purged.rows["journal_removed"] >= 2  # the deleted rows of two tables


async def test_a_purged_transfer_reports_revert_expired_and_no_revertible_until(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await expire(pk_of(transfer_id, "Transfer"))  # type: ignore[arg-type]
    await purge.purge()

    refused = (await api(REVERT, world.admin, id=transfer_id, confirm=True))["revertTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["REVERT_EXPIRED"] and refused["transfer"] is None
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert [e["code"] for e in plan["errors"]] == ["REVERT_EXPIRED"]
    assert (await api(STATE, world.admin, id=transfer_id))["transfer"]["revertibleUntil"] is None
    # A longer window afterwards cannot bring the journal back.
    monkeypatch.setattr(settings, "REVERT_DAYS", settings.REVERT_DAYS + 10)
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert [e["code"] for e in plan["errors"]] == ["NOT_REVERTIBLE"]
    assert (await api(STATE, world.admin, id=transfer_id))["transfer"]["revertibleUntil"] is None
    assert await world.owned(11) == {"CCR": 2}  # the purge touched the journal only


async def test_a_transfer_whose_revert_is_queued_keeps_its_journal_until_the_revert_has_run(world: World) -> None:
    await give_every_kind(world)
    before = await holdings(world, 10, 11)
    original = await applied(world, 10, 11)
    rows = await journal_rows(original.id)
    reverting, problems = await revert_start.start(world.users[1], original)  # queued: no worker takes it here
    assert problems == [] and reverting is not None
    await expire(original.id)

    await purge.purge()
    assert await journal_rows(original.id) == rows and await journaled(original.id)

    await run_pairs(reverting.id)
    assert (await Transfer.get(id=reverting.id)).status.value == "SUCCEEDED"
    assert await holdings(world, 10, 11) == before  # played back from the whole journal
    await purge.purge()
    assert await journal_rows(original.id) == 0 and not await journaled(original.id)


async def test_a_transfer_whose_revert_is_retried_keeps_its_journal_while_the_retry_waits(world: World) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "CCR", 2)
    original = await applied(world, 10, 11)
    await world.give(10, "AGENT_SCHEDULE")  # a new schedule since: the revert conflicts
    reverting, _ = await revert_start.start(world.users[1], original)
    assert reverting is not None
    await run_pairs(reverting.id)
    assert (await Transfer.get(id=reverting.id)).status.value == "FAILED"
    await AgentSchedule.filter(user_id=world.pk(10)).delete()  # gone again: no conflict now
    retrying, problems = await bulk.retry(world.users[1], await Transfer.get(id=reverting.id))
    assert problems == [] and retrying is not None
    await expire(original.id)

    await purge.purge()
    assert await journal_rows(original.id) > 0 and await journaled(original.id)

    await run_pairs(retrying.id)
    assert await world.owned(10) == {"CCR": 2, "AGENT_SCHEDULE": 1}
    await purge.purge()
    assert await journal_rows(original.id) == 0


async def test_a_large_journal_goes_in_short_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await give_every_kind(world)
    big = await applied(world, 10, 11)
    moves = await JournalMove.filter(item__transfer_id=big.id).count()
    assert moves >= 4
    await expire(big.id)
    steps = 0
    step = purge._journal_step

    async def counted(*args: object) -> bool:
        nonlocal steps
        steps += 1
        return await step(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(purge, "BATCH_ROWS", 1)
    monkeypatch.setattr(purge, "_journal_step", counted)
    purged = await purge.purge()
    assert await journal_rows(big.id) == 0 and not await journaled(big.id)
    assert purged.rows["journal_move"] >= moves and purged.rows["journal_removed"] >= 2
    assert steps > moves  # a row of each table per transaction, then one that finds nothing left


async def test_workers_purging_at_once_purge_each_journal_once(world: World) -> None:
    expired = []
    for source in (10, 12, 14, 16):
        await world.give(source, "CCR", 3)
        expired.append((await applied(world, source, source + 1)).id)
    for pk in expired:
        await expire(pk)

    first, second = await asyncio.gather(purge.purge(), purge.purge())
    assert all([not await journaled(pk) and await journal_rows(pk) == 0 for pk in expired])
    # Whichever purged a journal, it was counted once.
    assert first.rows["journal_move"] + second.rows["journal_move"] >= 4
    assert first.transfers + second.transfers >= 4


@pytest.mark.concurrent
async def test_a_purge_skips_the_transfers_another_workers_purge_step_holds_and_purges_the_rest_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await purge.purge()  # what earlier tests left
    expired = []
    for source in (10, 12, 14):
        await world.give(source, "CCR", 3)
        expired.append((await applied(world, source, source + 1)).id)
    for pk in expired:
        await expire(pk)
    monkeypatch.setattr(purge, "BATCH_TRANSFERS", 1)  # a step takes one transfer: the first
    stepped, commit = asyncio.Event(), asyncio.Event()
    held = purge.Purged(rows={table: 0 for table in ("journal_move", "journal_removed")})

    async def other_worker() -> None:
        async with in_transaction():  # its step has deleted the first journal, and not committed yet
            await purge._journal_step(clock.now() - timedelta(days=settings.REVERT_DAYS) - purge.GRACE, held)
            stepped.set()
            await commit.wait()

    other = asyncio.create_task(other_worker())
    await stepped.wait()
    try:  # waiting for the other step would wait for ever: it commits only afterwards
        purged = await asyncio.wait_for(purge.purge(), 20)
    finally:
        commit.set()
        await other
    assert purged.transfers == 2 and held.transfers == 1
    assert [await journaled(pk) for pk in expired] == [False, False, False]
    assert sum([await journal_rows(pk) for pk in expired]) == 0


async def test_idempotency_keys_older_than_a_day_are_purged_and_fresh_ones_stay(api: Api, world: World) -> None:
    await world.stock(10, 12)
    old = await start_with_key(api, world.admin, 10, 11, key="old-key")
    fresh = await start_with_key(api, world.admin, 12, 13, key="fresh-key")
    assert old["userErrors"] == [] and fresh["userErrors"] == []
    await api.wait_finished(world.admin, old["transfer"]["id"])
    await api.wait_finished(world.admin, fresh["transfer"]["id"])
    key = await IdempotencyKey.get(operator_id=world.pk(1), key="old-key")
    await IdempotencyKey.filter(id=key.id).update(created_at=key.created_at - timedelta(hours=24, seconds=1))

    purged = await purge.purge()
    assert purged.keys >= 1
    assert await IdempotencyKey.filter(operator_id=world.pk(1)).values_list("key", flat=True) == ["fresh-key"]
    again = await start_with_key(api, world.admin, 12, 13, key="fresh-key")  # a resent start still gets its transfer
    assert again["transfer"]["id"] == fresh["transfer"]["id"]


async def test_expired_keys_go_in_batches_every_one_counted_and_a_purge_with_nothing_to_do_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import idempotency

    await purge.purge()  # what earlier tests left
    await keys_past_their_day(world, range(10, 15))
    assert await idempotency.forget_expired(batch=2) == 5  # batches of 2, 2 and 1
    assert await IdempotencyKey.filter(operator_id=world.pk(1)).count() == 0
    assert not await purge.purge()


async def keys_past_their_day(world: World, sources: range) -> None:
    """An idempotency key, 25 hours old, for a transfer (cancelled at once) from each source."""
    await world.stock(*sources)
    for source in sources:
        started, problems = await starting.start_single(world.users[1], source, source + 10, idempotency_key=f"k{source}")
        assert problems == [] and started is not None
        await running.cancel(started)
    await IdempotencyKey.filter(operator_id=world.pk(1)).update(created_at=clock.now() - timedelta(hours=25))


def purged_line(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The one line the purge logged."""
    (line,) = [r for r in caplog.records if r.name == "models.purge"]
    assert line.getMessage() == "purged"
    return line


async def test_a_purge_logs_one_line_with_the_journals_rows_and_keys_it_deleted(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await purge.purge()  # what earlier tests left
    await give_every_kind(world)
    old = await applied(world, 10, 11)
    items = await TransferItem.filter(transfer_id=old.id).values_list("id", flat=True)
    moves = await JournalMove.filter(item_id__in=items).count()
    removed = await JournalRemoved.filter(item_id__in=items).count()
    assert moves >= 4 and removed >= 2
    await expire(old.id)

    with caplog.at_level(logging.INFO, logger="models.purge"):
        purged = await purge.purge()
    line = purged_line(caplog)
    assert (line.journals, line.journal_move, line.journal_removed, line.idempotency_keys) == (1, moves, removed, 0)
    assert purged == purge.Purged(rows={"journal_move": moves, "journal_removed": removed}, transfers=1, keys=0)


async def test_a_purge_that_only_forgot_idempotency_keys_says_it_purged_and_logs_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await purge.purge()  # what earlier tests left
    await keys_past_their_day(world, range(10, 12))

    with caplog.at_level(logging.INFO, logger="models.purge"):
        purged = await purge.purge()
    assert purged and (purged.transfers, purged.keys, set(purged.rows.values())) == (0, 2, {0})
    line = purged_line(caplog)
    assert (line.journals, line.journal_move, line.journal_removed, line.idempotency_keys) == (0, 0, 0, 2)


async def test_every_worker_purges_at_start_and_every_purge_seconds(
    world: World, database: str, redis_url: str, tmp_path: Path
) -> None:
    await world.give(10, "CCR", 2)
    await world.give(12, "CCR", 2)
    first = await applied(world, 10, 11)
    second = await applied(world, 12, 13)
    await expire(first.id)
    queue = f"udt:test-purge:{world.tenant.id}"
    workers = Workers(worker_env(database, redis_url, queue, UDT_PURGE_SECONDS="0.2"), tmp_path / "pairs")
    try:
        await workers.start()
        await until(lambda: _purged(first.id), 60)
        assert await journaled(second.id)
        await expire(second.id)  # while the worker runs: its next round takes it
        await until(lambda: _purged(second.id), 60)
    finally:
        await workers.stop_all()
    log = (tmp_path / "worker-0.log").read_text()
    assert "purged" in log and "journal_move=" in log


async def _purged(transfer_pk: int) -> bool:
    return not await journaled(transfer_pk) and await journal_rows(transfer_pk) == 0


async def test_a_journal_is_kept_until_its_window_has_ended_plus_the_grace_period_never_a_minute_less(
    world: World,
) -> None:
    """A revert checked just before the window ended commits a moment later and must find its journal."""
    await world.give(10, "CCR", 2)
    await world.give(12, "CCR", 2)
    kept, gone = await applied(world, 10, 11), await applied(world, 12, 13)
    window = timedelta(days=settings.REVERT_DAYS)
    minute = timedelta(minutes=1)
    await Transfer.filter(id=kept.id).update(finished_at=clock.now() - window - purge.GRACE + minute)
    await Transfer.filter(id=gone.id).update(finished_at=clock.now() - window - purge.GRACE - minute)
    await purge.purge()
    assert await journal_rows(kept.id) == 1 and await journaled(kept.id)
    assert await journal_rows(gone.id) == 0 and not await journaled(gone.id)
