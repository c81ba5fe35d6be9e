"""Workers die, drain, lose Redis or their database connection: every pair is still applied exactly once.

Real `udt worker` processes (tests/slow_worker.py) on a queue of the test's own,
killed with SIGKILL, stopped with SIGTERM, their Redis server killed and started
empty, their PostgreSQL backends terminated.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from arq.constants import job_key_prefix
from asyncpg.exceptions import ConnectionDoesNotExistError
from redis.asyncio import Redis
from tortoise import connections

from graph.core.relay import to_global_id
from jobs import transfer as transfer_jobs
from models import bulk, clock, running, settings, starting
from models.leases import LaneRef
from models.transfers import ItemStatus, Transfer, TransferItem, TransferLane
from models.userdata import AgentSchedule, Evaluation, OwnedRecord
from tests.processes import RedisServer, Workers, enqueue, finished, until, worker_env
from tests.support import Api, World, free_port

PAIRS = [(s, s + 10) for s in range(10, 20)]


async def _records() -> int:
    return await OwnedRecord.all().count() + await Evaluation.all().count() + await AgentSchedule.all().count()


async def _bulk(world: World, monkeypatch, lanes: int) -> Transfer:
    """A bulk transfer of PAIRS (committed, not yet enqueued): 20 CCR and 5 PROJECT per source."""
    monkeypatch.setattr(settings, "BULK_LANES", lanes)
    for source, target in PAIRS:
        await world.give(source, "CCR", 20)
        await world.give(source, "PROJECT", 5)
        await world.give(target, "CCR", 2)
        await world.give(target, "PROJECT", 3)
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in PAIRS)
    upload = await bulk.create_upload(world.users[1], "f.csv", content.encode())
    transfer, problems = await bulk.start(world.users[1], upload)
    assert problems == []
    return transfer


async def _applied(transfer: Transfer) -> int:
    return (await Transfer.get(id=transfer.id)).processed_pairs



async def _assert_every_pair_applied_once(world: World, transfer: Transfer, records_before: int) -> None:
    done = await Transfer.get(id=transfer.id)
    assert (done.processed_pairs, done.succeeded_pairs, done.failed_pairs) == (len(PAIRS), len(PAIRS), 0)
    assert done.status.value == "SUCCEEDED"
    items = await TransferItem.filter(transfer_id=transfer.id).values_list("id", "status")
    assert {status for _, status in items} == {ItemStatus.SUCCEEDED}
    for source, target in PAIRS:
        assert await world.owned(source) == {}
        assert await world.owned(target) == {"CCR": 22, "PROJECT": 5}
    assert await _records() == records_before - 3 * len(PAIRS)  # only the targets' overwritten PROJECTs
    # A late duplicate of any pair (a stale job, a second worker) changes nothing.
    for item_id, _ in items:
        assert await running.process_item(item_id) == []
    assert await _records() == records_before - 3 * len(PAIRS)
    assert (await Transfer.get(id=transfer.id)).processed_pairs == len(PAIRS)


@pytest.fixture
def queue(world: World, monkeypatch) -> str:
    """A queue of the test's own: only the worker processes started here take its jobs."""
    name = f"udt:test-workers:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", name)
    return name


@pytest.fixture
async def workers(database: str, redis_url: str, queue: str, tmp_path: Path):
    found = Workers(worker_env(database, redis_url, queue), tmp_path / "pairs")
    yield found
    await found.stop_all()


async def test_a_worker_killed_mid_pair_loses_nothing_and_another_finishes_within_the_lease(
    api: Api, world: World, workers: Workers, monkeypatch
) -> None:
    transfer = await _bulk(world, monkeypatch, lanes=1)
    before = await _records()
    watching = asyncio.create_task(api.events(world.admin, to_global_id("Transfer", transfer.id)))
    doomed = await workers.start(HANG_AFTER="3")  # three pairs, then the fourth hangs inside its transaction
    await enqueue(transfer)
    await until(lambda: workers.pairs_begun() == 4, 60)
    in_flight = await TransferItem.get(transfer_id=transfer.id, position=3)
    assert in_flight.status is ItemStatus.PENDING  # applied inside the open transaction, not committed
    assert await _applied(transfer) == 3

    doomed.kill()  # SIGKILL: no clean-up, a pair's transaction open
    await doomed.wait()
    await workers.start()
    await until(lambda: finished(transfer), 60)

    await _assert_every_pair_applied_once(world, transfer, before)
    in_flight = await TransferItem.get(id=in_flight.id)
    assert in_flight.attempts == 2  # the dead worker's attempt counted, then the rescuer's
    lane = await TransferLane.get(transfer_id=transfer.id, lane=0)
    assert lane.generation == 2 and lane.finished  # fenced off from the dead worker's job, then done
    received = await asyncio.wait_for(watching, 30)
    items = [(e["sourceUserId"], e["targetUserId"]) for e in received if e["type"] == "ITEM_SUCCEEDED"]
    assert sorted(items) == PAIRS  # every pair's event exactly once, across processes
    assert received[-1]["type"] == "SUCCEEDED" and received[-1]["processedPairs"] == len(PAIRS)


async def test_sigterm_finishes_the_pair_in_flight_then_hands_the_lane_over_and_exits(
    world: World, workers: Workers, redis_url: str, queue: str, monkeypatch
) -> None:
    transfer = await _bulk(world, monkeypatch, lanes=2)
    before = await _records()
    draining = await workers.start(SLOW_PAIR_SECONDS="1")
    await enqueue(transfer)
    await until(lambda: workers.pairs_begun() >= 2, 60)
    draining.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(draining.wait(), 30) == 0

    applied = await _applied(transfer)
    assert applied == workers.pairs_begun()  # every pair begun was finished and committed
    assert applied < len(PAIRS)  # and it took no new one
    # Nothing is left for recovery to find: no lease held, each open lane's next job queued.
    lanes = await TransferLane.filter(transfer_id=transfer.id, finished=False)
    assert lanes and all(lane.lease_until is None for lane in lanes)
    redis = Redis.from_url(redis_url)
    try:
        for lane in lanes:
            job = transfer_jobs.job_id(LaneRef(transfer.id, lane.lane, lane.generation))
            assert await redis.exists(job_key_prefix + job)
    finally:
        await redis.aclose()

    await workers.start()
    await until(lambda: finished(transfer), 60)
    await _assert_every_pair_applied_once(world, transfer, before)
    assert set(await TransferItem.filter(transfer_id=transfer.id).values_list("attempts", flat=True)) == {1}


async def test_redis_restarted_empty_mid_bulk_the_bulk_still_ends_with_every_pair_once(
    world: World, database: str, queue: str, tmp_path: Path, monkeypatch
) -> None:
    server = RedisServer(free_port(), tmp_path)
    await server.start()
    monkeypatch.setattr(settings, "REDIS_URL", server.url)
    workers = Workers(worker_env(database, server.url, queue), tmp_path / "pairs")
    try:
        transfer = await _bulk(world, monkeypatch, lanes=2)
        before = await _records()
        # One job at a time and short slices: the lanes take turns, so one is always
        # waiting in the queue when Redis goes.
        await workers.start(SLOW_PAIR_SECONDS="0.3", UDT_WORKER_MAX_JOBS="1", UDT_SLICE_SECONDS="0.5")
        await enqueue(transfer)
        await until(lambda: workers.pairs_begun() >= 3, 60)
        await server.kill()  # every job, queue entry and event stream is gone
        await asyncio.sleep(3)  # longer than redis-py's own reconnect attempts
        await server.start()
        await until(lambda: finished(transfer), 120)
        await _assert_every_pair_applied_once(world, transfer, before)
        assert [worker.returncode for worker in workers.started] == [None]  # it waited for Redis, and lives
    finally:
        await workers.stop_all()
        await server.kill()


@pytest.mark.postgres
async def test_a_worker_killed_inside_a_long_statement_does_not_hold_up_the_next_one(
    world: World, workers: Workers, monkeypatch
) -> None:
    """PostgreSQL runs a dead client's statement on, with its row locks, until it next
    writes to the client; the service's connections ask it to check the client instead."""
    transfer = await _bulk(world, monkeypatch, lanes=1)
    before = await _records()
    doomed = await workers.start(HANG_AFTER="1", HANG_IN_STATEMENT="1")
    await enqueue(transfer)
    await until(lambda: workers.pairs_begun() == 2, 60)
    sleeping = "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'udt-worker' AND query LIKE '%pg_sleep(3600)%' AND state = 'active'"
    db = connections.get("default")
    await until(lambda: _count(db, sleeping, 1), 10)

    doomed.kill()
    await doomed.wait()
    await workers.start()
    await until(lambda: finished(transfer), 60)  # the pair's rows were not locked for an hour
    await _assert_every_pair_applied_once(world, transfer, before)
    assert await _count(db, sleeping, 0)  # the ghost statement is gone


async def _count(db, query: str, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return (await db.execute_query_dict(query))[0]["n"] == expected


@pytest.mark.postgres
async def test_pairs_whose_database_connection_is_cut_roll_back_and_are_applied_again(
    world: World, workers: Workers, monkeypatch
) -> None:
    transfer = await _bulk(world, monkeypatch, lanes=2)
    before = await _records()
    await workers.start(SLOW_PAIR_SECONDS="0.3")
    await enqueue(transfer)
    cut = 0
    for begun in (2, 5):
        await until(lambda b=begun: workers.pairs_begun() >= b, 60)
        rows = await connections.get("default").execute_query_dict(
            "SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity "
            "WHERE application_name = 'udt-worker' AND state = 'idle in transaction'"
        )
        cut += len(rows)
    assert cut >= 1  # at least one pair's transaction was open when its connection went
    await until(lambda: finished(transfer), 60)
    await _assert_every_pair_applied_once(world, transfer, before)
    assert max(await TransferItem.filter(transfer_id=transfer.id).values_list("attempts", flat=True)) >= 2


@pytest.mark.concurrent  # on SQLite a renewal waits for the pair's transaction, as every statement does
async def test_a_pair_that_outlasts_its_lease_many_times_is_never_taken_over(world: World, workers: Workers) -> None:
    await world.give(10, "CCR", 3)
    transfer, problems = await starting.start_single(world.users[1], 10, 11)
    assert problems == []
    await workers.start(SLOW_PAIR_SECONDS="6", UDT_LEASE_SECONDS="2", UDT_RECONCILE_SECONDS="0.2")
    await enqueue(transfer)
    await until(lambda: finished(transfer), 60)
    assert (await Transfer.get(id=transfer.id)).status.value == "SUCCEEDED"
    (item,) = await TransferItem.filter(transfer_id=transfer.id)
    assert item.attempts == 1  # renewed, not cut short and not run twice
    assert (await TransferLane.get(transfer_id=transfer.id)).generation == 1
    assert await world.owned(11) == {"CCR": 3}


async def test_a_lane_job_renews_its_lease_so_that_it_never_runs_below_a_third_of_a_lease_while_a_pair_runs(
    world: World, monkeypatch, redis_url: str
) -> None:
    """Renewed every third of a lease, for a whole lease, the lease stays two thirds ahead; it is
    held to a third so that a loaded machine's late wake-up is no failure. Renewed too seldom
    (every lease) or too short (for half a lease), it falls below that within two leases."""
    from jobs import connection
    from models import leases

    lease = 3.0
    monkeypatch.setattr(settings, "LEASE_SECONDS", lease)
    await world.give(10, "CCR", 2)
    transfer, problems = await starting.start_single(world.users[1], 10, 11)  # committed, never enqueued
    assert problems == []
    (lane,) = await leases.of_transfer(transfer.id)
    released = asyncio.Event()
    apply = running.process_item

    async def a_long_pair(item_id: int) -> list:
        await released.wait()  # outside any transaction: renewals are not held up on SQLite
        return await apply(item_id)

    monkeypatch.setattr(running, "process_item", a_long_pair)
    pool = await connection.arq_pool()
    try:
        job = asyncio.create_task(transfer_jobs.run_lane({"redis": pool}, lane.transfer_id, lane.lane, lane.generation))
        await until(lambda: TransferLane.exists(transfer_id=transfer.id, lease_until__isnull=False), 10)
        ahead = []
        deadline = asyncio.get_running_loop().time() + 2 * lease
        while asyncio.get_running_loop().time() < deadline:
            (until_,) = await TransferLane.filter(transfer_id=transfer.id).values_list("lease_until", flat=True)
            ahead.append((until_ - clock.now()).total_seconds())
            await asyncio.sleep(lease / 30)
        released.set()
        assert await job == 1
    finally:
        released.set()
        await pool.aclose()
    assert min(ahead) > lease / 3, ahead
    assert (await TransferLane.get(transfer_id=transfer.id)).generation == 1
    assert await world.owned(11) == {"CCR": 2}


async def test_a_draining_lane_job_hands_its_lane_to_a_successor_queued_behind_which_carries_on(
    world: World, pool, queue: str, monkeypatch
) -> None:
    """In process, as `udt worker` does on SIGTERM: after the pair in flight, the lane goes to the next
    generation, lease and holder cleared, and that generation's job, queued, applies the rest."""
    from models import leases

    transfer = await _bulk(world, monkeypatch, lanes=1)
    before = await _records()
    apply, holders = running.process_item, []

    async def noting_the_holder(item_id: int) -> list:
        holders.append((await TransferLane.get(transfer_id=transfer.id)).holder)
        return await apply(item_id)

    monkeypatch.setattr(running, "process_item", noting_the_holder)
    ctx = {"redis": pool, "draining": lambda: len(holders) == 1}  # SIGTERM while the first pair runs
    assert await transfer_jobs.run_lane(ctx, transfer.id, 0, 1) == 1
    assert holders == [leases.HOLDER]
    lane = await TransferLane.get(transfer_id=transfer.id)
    assert (lane.generation, lane.finished, lane.lease_until, lane.holder) == (2, False, None, None)
    successor = LaneRef(transfer.id, 0, 2)
    assert [job.decode() for job in await pool.zrange(queue, 0, -1)] == [transfer_jobs.job_id(successor)]
    assert await transfer_jobs.run_lane({"redis": pool}, transfer.id, 0, 2) == len(PAIRS) - 1
    await _assert_every_pair_applied_once(world, transfer, before)
    assert set(await TransferItem.filter(transfer_id=transfer.id).values_list("attempts", flat=True)) == {1}


async def test_a_job_draining_after_its_lane_was_taken_over_and_finished_elsewhere_hands_nothing_over(
    world: World, pool, queue: str, monkeypatch
) -> None:
    """The interleaving is forced: the job stalls past its lease after its first pair; the reconciler
    takes the lane (counting the attempt lost on the next pair), the new job finishes it; then
    SIGTERM reaches the stalled job, which finds the lane is no longer its own."""
    from models import leases

    transfer = await _bulk(world, monkeypatch, lanes=1)
    before = await _records()
    apply, rescued = running.process_item, []

    async def stalling_after_the_first_pair(item_id: int) -> list:
        done = await apply(item_id)
        if not rescued:
            rescued.append(True)
            await TransferLane.filter(transfer_id=transfer.id).update(lease_until=clock.now() - timedelta(seconds=1))
            taken = [new for old, new in await leases.take_over_expired() if old.transfer_id == transfer.id]
            assert taken == [LaneRef(transfer.id, 0, 2)]
            rescued.append(await transfer_jobs.run_lane({"redis": pool}, transfer.id, 0, 2))
        return done

    monkeypatch.setattr(running, "process_item", stalling_after_the_first_pair)
    ctx = {"redis": pool, "draining": lambda: bool(rescued)}
    assert await transfer_jobs.run_lane(ctx, transfer.id, 0, 1) == 1
    assert rescued == [True, len(PAIRS) - 1]
    lane = await TransferLane.get(transfer_id=transfer.id)
    assert (lane.generation, lane.finished) == (2, True)
    assert await pool.zrange(queue, 0, -1) == []  # no successor of a lane that is not ours
    await _assert_every_pair_applied_once(world, transfer, before)
    attempts = dict(await TransferItem.filter(transfer_id=transfer.id).values_list("position", "attempts"))
    assert attempts == {position: 2 if position == 1 else 1 for position in range(len(PAIRS))}


def _cut_connection() -> ConnectionDoesNotExistError:
    """What asyncpg raises when a statement's connection is cut under it (SQLSTATE 08003)."""
    return ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def test_a_lane_job_that_loses_the_database_says_so_and_carries_on_in_the_same_job(
    world: World, pool, queue: str, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In process, on either database: the statement that starts the transfer loses its connection once."""
    from models import leases

    await world.give(10, "CCR", 2)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)
    (lane,) = await leases.of_transfer(transfer.id)
    begin, cut, tries = running.begin, _cut_connection(), []

    async def cut_once(transfer_id: int) -> list:
        tries.append(transfer_id)
        if len(tries) == 1:
            raise cut
        return await begin(transfer_id)

    monkeypatch.setattr(running, "begin", cut_once)
    with caplog.at_level(logging.WARNING, logger="jobs.transfer"):
        assert await transfer_jobs.run_lane({"redis": pool}, transfer.id, lane.lane, lane.generation) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "jobs.transfer"] == [
        f"{transfer_jobs.job_id(lane)} lost the database ({cut!r})"
    ]
    done = await Transfer.get(id=transfer.id)
    assert (done.status.value, done.succeeded_pairs) == ("SUCCEEDED", 1)
    assert (await TransferLane.get(transfer_id=transfer.id)).generation == 1  # never taken over
    assert (await TransferItem.get(transfer_id=transfer.id)).attempts == 1
    assert await world.owned(11) == {"CCR": 2}


async def test_a_lane_job_whose_database_answers_at_once_yet_keeps_failing_it_fails_after_max_attempts_resumes(
    world: World, pool, queue: str, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A lost connection is no outage if the database answers the next probe at once, every time."""
    from models import leases

    monkeypatch.setattr(settings, "MAX_ATTEMPTS", 3)
    await world.give(10, "CCR", 1)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)
    (lane,) = await leases.of_transfer(transfer.id)
    tries = []

    async def always_cut(transfer_id: int) -> list:
        tries.append(transfer_id)
        if len(tries) > 10:
            raise RuntimeError("still resuming")  # ends a job that would resume for ever
        raise _cut_connection()

    monkeypatch.setattr(running, "begin", always_cut)
    with caplog.at_level(logging.WARNING, logger="jobs.transfer"), pytest.raises(ConnectionDoesNotExistError):
        await transfer_jobs.run_lane({"redis": pool}, transfer.id, lane.lane, lane.generation)
    assert len(tries) == 3
    assert len([r for r in caplog.records if r.name == "jobs.transfer" and "lost the database" in r.getMessage()]) == 3
    await running.cancel(transfer)


async def test_a_lane_handed_over_while_redis_is_away_says_the_reconciler_will_queue_its_successor(
    world: World, pool, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    from arq.connections import ArqRedis

    from models import leases

    await world.give(10, "CCR", 1)
    transfer, _ = await starting.start_single(world.users[1], 10, 11)
    (lane,) = await leases.of_transfer(transfer.id)
    dead = ArqRedis.from_url("redis://127.0.0.1:1")  # nothing listens there
    try:
        with caplog.at_level(logging.WARNING, logger="jobs.transfer"):
            ctx = {"redis": dead, "draining": lambda: True}  # SIGTERM before its first pair
            assert await transfer_jobs.run_lane(ctx, transfer.id, lane.lane, lane.generation) == 0
    finally:
        await dead.aclose()
    successor = LaneRef(transfer.id, lane.lane, lane.generation + 1)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "jobs.transfer"]
    assert line.startswith(f"could not enqueue {[transfer_jobs.job_id(successor)]} now (ConnectionError(")
    assert line.endswith("); the reconciler will")
    assert await leases.of_transfer(transfer.id) == [successor]
    await Transfer.filter(id=transfer.id).update(created_at=transfer.created_at - timedelta(minutes=5))
    await transfer_jobs.reconcile(pool)
    queued = [job.decode() for job in await pool.zrange(queue, 0, -1)]
    assert [job for job in queued if job.startswith(f"udt:transfer:{transfer.id}:")] == [transfer_jobs.job_id(successor)]
    await running.cancel(transfer)
