"""Tenants share the workers: a single transfer never waits behind another tenant's bulk,
and two tenants' bulks progress side by side.

One real worker process with two job slots, slowed pairs and short slices, so
that the bulk alone could fill it: fairness has to come from the lanes taking
turns, not from spare capacity.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from arq.constants import in_progress_key_prefix

from graph.core.relay import to_global_id
from jobs import transfer as transfer_jobs
from models import leases, running, settings, starting
from models.transfers import Transfer, TransferLane
from tests.processes import Workers, enqueue, finished, until, worker_env
from tests.support import Api, World, make_world, start_bulk


async def _status(transfer: Transfer) -> Transfer:
    return await Transfer.get(id=transfer.id)


async def test_a_single_transfer_and_another_tenants_bulk_run_while_a_bulk_runs(
    api: Api, world: World, database: str, redis_url: str, tmp_path: Path, monkeypatch
) -> None:
    queue = f"udt:test-fairness:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    monkeypatch.setattr(settings, "BULK_LANES", 2)
    workers = Workers(
        worker_env(database, redis_url, queue, UDT_WORKER_MAX_JOBS="2", UDT_SLICE_SECONDS="0.3"), tmp_path / "pairs"
    )
    other = await make_world()
    try:
        # Everything is in the database before the worker starts: on SQLite its
        # transactions would otherwise hold the test's writes up.
        first = await start_bulk(world, [(s, s + 15) for s in range(10, 25)])  # 15 pairs
        await other.give(10, "CCR", 1)
        single, problems = await starting.start_single(other.users[1], 10, 11)
        assert problems == []
        second = await start_bulk(other, [(s, s + 5) for s in range(12, 17)])
        await workers.start(SLOW_PAIR_SECONDS="0.3")
        await enqueue(first)
        await until(lambda: workers.pairs_begun() >= 2, 60)  # the first bulk fills both job slots
        await enqueue(single)
        await enqueue(second)

        await until(lambda: finished(single), 60)
        assert not (await _status(first)).status.finished  # the single one did not wait for the bulk
        await until(lambda: _progressed(second), 60)
        assert not (await _status(first)).status.finished  # the second bulk did not wait either

        await until(lambda: finished(first), 120)
        await until(lambda: finished(second), 120)
        for transfer in (first, second, single):
            done = await api.wait_finished(
                world.admin if transfer is first else other.admin, to_global_id("Transfer", transfer.id)
            )
            assert done["status"] == "SUCCEEDED"
    finally:
        await workers.stop_all()



async def _progressed(transfer: Transfer) -> bool:
    return (await _status(transfer)).processed_pairs > 0


async def test_a_lane_keeps_its_worker_slot_while_nobody_waits(
    world: World, database: str, redis_url: str, tmp_path: Path, monkeypatch
) -> None:
    queue = f"udt:test-fairness:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    monkeypatch.setattr(settings, "BULK_LANES", 2)
    workers = Workers(worker_env(database, redis_url, queue, UDT_SLICE_SECONDS="0.1"), tmp_path / "pairs")
    try:
        alone = await start_bulk(world, [(s, s + 10) for s in range(10, 18)])
        await workers.start(SLOW_PAIR_SECONDS="0.1")
        await enqueue(alone)
        await until(lambda: finished(alone), 60)
    finally:
        await workers.stop_all()
    # Many slices went by, and no lane ever handed itself over.
    assert set(await TransferLane.filter(transfer_id=alone.id).values_list("generation", flat=True)) == {1}


async def test_a_new_transfers_lanes_go_ahead_of_lanes_waiting_for_their_turn(world: World, pool, monkeypatch) -> None:
    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-order:{world.tenant.id}")  # no worker takes it
    bulk_transfer = await start_bulk(world, [(10, 20), (11, 21)])
    (successor, *_) = await leases.of_transfer(bulk_transfer.id)
    await transfer_jobs.enqueue_lanes(pool, [successor])  # a lane that handed over after its slice
    await world.give(12, "CCR", 1)
    single, _ = await starting.start_single(world.users[1], 12, 13)
    await transfer_jobs.enqueue(pool, single)
    queued = [job.decode() for job in await pool.zrange(settings.QUEUE_NAME, 0, -1)]
    (first_lane,) = await leases.of_transfer(single.id)
    assert queued == [transfer_jobs.job_id(first_lane), transfer_jobs.job_id(successor)]
    await running.cancel(single)
    await running.cancel(bulk_transfer)


async def test_a_worker_runs_below_the_apis_priority_so_a_bulk_takes_only_the_cpu_the_api_leaves(
    database: str, redis_url: str, tmp_path: Path
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)  # a worker is never raised above what it was started at
    env = worker_env(database, redis_url, "udt:test-priority", UDT_METRICS="off")
    workers = Workers(env, tmp_path / "pairs")
    try:
        default, told, unniced = await workers.start(), await workers.start(UDT_WORKER_NICE="15"), await workers.start(UDT_WORKER_NICE="0")
        expected = {default.pid: max(own, 10), told.pid: max(own, 15), unniced.pid: own}
        # Set as the command starts, before the worker connects to anything.
        await until(lambda: {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in expected} == expected, 30)
    finally:
        await workers.stop_all()


class _Clock:
    """A lane job's clock that moves only when the test moves it: its slices end where the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    time = staticmethod(time.time)  # the queue's scores stay real


async def _one_lane(world: World, monkeypatch, pairs: int) -> tuple[Transfer, leases.LaneRef, str]:
    """A bulk of `pairs` pairs in one lane, on a queue no worker takes from, its job queued and
    marked running as arq does; SLICE_SECONDS is 1."""
    queue = f"udt:test-slices:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    monkeypatch.setattr(settings, "BULK_LANES", 1)
    monkeypatch.setattr(settings, "SLICE_SECONDS", 1.0)
    bulk_transfer = await start_bulk(world, [(s, s + 10) for s in range(10, 10 + pairs)])
    (lane,) = await leases.of_transfer(bulk_transfer.id)
    return bulk_transfer, lane, in_progress_key_prefix + transfer_jobs.job_id(lane)


def _moving(monkeypatch, clock: _Clock, during: dict[int, tuple[float, Callable[[], Awaitable[object]] | None]]) -> None:
    """Pair n (from 1) moves the lane job's clock by during[n][0] seconds and runs during[n][1]."""
    monkeypatch.setattr(transfer_jobs, "time", clock)
    apply, begun = running.process_item, []

    async def pair(item_id: int) -> list:
        begun.append(item_id)
        seconds, then = during.get(len(begun), (0.0, None))
        clock.now += seconds
        if then is not None:
            await then()
        return await apply(item_id)

    monkeypatch.setattr(running, "process_item", pair)


def _other(world: World) -> str:
    return f"udt:test-other-job:{world.tenant.id}"


async def _another_job(pool, world: World) -> None:
    """A job of another transfer, ready and not started."""
    assert await pool.enqueue_job("run_lane", 0, 0, 1, _job_id=_other(world), _queue_name=settings.QUEUE_NAME)


async def test_a_lane_past_its_slice_keeps_working_while_nobody_waits_and_looks_again_a_slice_later(
    world: World, pool, monkeypatch
) -> None:
    bulk_transfer, lane, running_mark = await _one_lane(world, monkeypatch, 3)
    await transfer_jobs.enqueue(pool, bulk_transfer)
    await pool.set(running_mark, b"1")
    # The slice is over after the first pair, with only this job in the queue; a job comes
    # during the second pair, half a slice later: the lane looks again only a slice later.
    _moving(monkeypatch, _Clock(), {1: (1.5, None), 2: (0.5, lambda: _another_job(pool, world))})
    assert await transfer_jobs.run_lane({"redis": pool}, bulk_transfer.id, lane.lane, lane.generation) == 3
    assert (await TransferLane.get(transfer_id=bulk_transfer.id)).generation == 1
    assert (await _status(bulk_transfer)).status.value == "SUCCEEDED"


async def test_a_lane_past_its_slice_hands_over_to_a_successor_at_the_tail_when_a_job_waits(
    world: World, pool, monkeypatch
) -> None:
    bulk_transfer, lane, running_mark = await _one_lane(world, monkeypatch, 3)
    await transfer_jobs.enqueue(pool, bulk_transfer)  # this job, at the head, running
    await pool.set(running_mark, b"1")
    await _another_job(pool, world)  # behind it, waiting
    _moving(monkeypatch, _Clock(), {1: (1.5, None)})
    assert await transfer_jobs.run_lane({"redis": pool}, bulk_transfer.id, lane.lane, lane.generation) == 1
    successor = leases.LaneRef(bulk_transfer.id, lane.lane, lane.generation + 1)
    assert await leases.of_transfer(bulk_transfer.id) == [successor]
    queued = [job.decode() for job in await pool.zrange(settings.QUEUE_NAME, 0, -1)]
    assert queued[1:] == [_other(world), transfer_jobs.job_id(successor)]
    await running.cancel(bulk_transfer)


async def test_a_lane_past_its_slice_keeps_working_while_redis_is_away(world: World, monkeypatch) -> None:
    """Nobody can be waiting for a queue that cannot be read: handing over would only stall the lane."""
    from arq.connections import ArqRedis

    bulk_transfer, lane, _ = await _one_lane(world, monkeypatch, 2)
    _moving(monkeypatch, _Clock(), {1: (1.5, None)})
    dead = ArqRedis.from_url("redis://127.0.0.1:1")  # nothing listens there
    try:
        assert await transfer_jobs.run_lane({"redis": dead}, bulk_transfer.id, lane.lane, lane.generation) == 2
    finally:
        await dead.aclose()
    assert (await TransferLane.get(transfer_id=bulk_transfer.id)).generation == 1
    assert (await _status(bulk_transfer)).status.value == "SUCCEEDED"


async def test_others_wait_only_while_a_due_job_that_no_worker_has_started_is_in_the_queue(world: World, pool, monkeypatch) -> None:
    """What a lane at the end of its slice asks before handing over: a job deferred to later,
    or one a worker runs (arq keeps it in the queue, marked in progress), is nobody waiting."""
    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-waiting:{world.tenant.id}")  # no worker takes it
    now_ms = int(time.time() * 1000)
    assert not await transfer_jobs._others_waiting(pool)  # an empty queue
    await pool.zadd(settings.QUEUE_NAME, {"later": now_ms + 3600 * 1000})
    assert not await transfer_jobs._others_waiting(pool)  # due in an hour
    await pool.zadd(settings.QUEUE_NAME, {"due": now_ms - 1000})
    assert await transfer_jobs._others_waiting(pool)
    await pool.psetex(in_progress_key_prefix + "due", 60 * 1000, b"1")  # a worker started it
    assert not await transfer_jobs._others_waiting(pool)


async def test_a_job_waiting_behind_hundreds_of_running_jobs_is_seen(world: World, pool, monkeypatch) -> None:
    """Many workers: the running lanes, queued before it, fill the head of the queue."""
    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-waiting-behind:{world.tenant.id}")  # no worker takes it
    now_ms = int(time.time() * 1000)
    started = [f"running-{n}" for n in range(250)]
    await pool.zadd(settings.QUEUE_NAME, {job: now_ms - 60_000 + n for n, job in enumerate(started)})
    for job in started:
        await pool.psetex(in_progress_key_prefix + job, 60 * 1000, b"1")
    assert not await transfer_jobs._others_waiting(pool)
    await pool.zadd(settings.QUEUE_NAME, {"waiting": now_ms - 1000})
    assert await transfer_jobs._others_waiting(pool)
