"""The reconciler: the database is the source of truth, so work Redis lost is found again."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from arq.constants import in_progress_key_prefix, job_key_prefix

from graph.core.relay import to_global_id
from jobs import transfer as transfer_jobs
from jobs.transfer import reconcile
from models import clock, leases, running, starting
from models.transfers import Transfer, TransferLane, TransferStatus
from tests.support import Api, World, start_bulk


async def _queued_jobs(pool, transfer: Transfer) -> list[str]:
    from models import settings

    jobs = [job.decode() for job in await pool.zrange(settings.QUEUE_NAME, 0, -1)]
    return [job for job in jobs if job.startswith(f"udt:transfer:{transfer.id}:")]


async def _age(transfer: Transfer, minutes: int = 5) -> None:
    await Transfer.filter(id=transfer.id).update(created_at=transfer.created_at - timedelta(minutes=minutes))


async def _started(pool, job: str, seconds_ago: float = 0.0) -> None:
    """Mark `job` started `seconds_ago`, as arq does: an in-progress key living JOB_TIMEOUT_SECONDS + 10 s."""
    marked = transfer_jobs.JOB_TIMEOUT_SECONDS + 10
    await pool.psetex(in_progress_key_prefix + job, int((marked - seconds_ago) * 1000), b"1")


@pytest.fixture
def queue(world: World, monkeypatch) -> str:
    """A queue of the test's own, which no worker takes jobs from."""
    from models import settings

    name = f"udt:test-reconcile-own:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", name)
    return name


async def _single(world: World, source: int) -> tuple[Transfer, leases.LaneRef]:
    """A transfer of `source`'s one CCR record to `source + 1` (committed, not enqueued), and its lane."""
    await world.stock(source)
    transfer, _ = await starting.start_single(world.users[1], source, source + 1)
    (lane,) = await leases.of_transfer(transfer.id)
    return transfer, lane


async def test_a_transfer_whose_job_was_lost_is_enqueued_again_and_finishes(api: Api, world: World, pool) -> None:
    await world.give(10, "CCR", 2)
    lost, _ = await starting.start_single(world.users[1], 10, 11)  # committed, never enqueued
    await _age(lost)
    assert await reconcile(pool) >= 1  # other tests' unfinished transfers may be offered too
    done = await api.wait_finished(world.admin, to_global_id("Transfer", lost.id))
    assert done["status"] == "SUCCEEDED"
    assert await world.owned(11) == {"CCR": 2}


async def test_a_young_transfer_is_left_to_the_enqueue_after_its_start(world: World, pool) -> None:
    await world.stock(12)
    young, _ = await starting.start_single(world.users[1], 12, 13)
    (lane,) = await leases.of_transfer(young.id)
    await reconcile(pool)
    assert not await pool.exists(job_key_prefix + transfer_jobs.job_id(lane))
    await running.cancel(young)


async def test_a_lane_whose_job_is_queued_is_not_offered_twice(world: World, pool, monkeypatch) -> None:
    from models import settings

    await world.stock(14)
    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-reconcile:{world.tenant.id}")  # no worker takes it
    queued, _ = await starting.start_single(world.users[1], 14, 15)
    await transfer_jobs.enqueue(pool, queued)
    await _age(queued)
    await reconcile(pool)
    (lane,) = await leases.of_transfer(queued.id)
    assert await _queued_jobs(pool, queued) == [transfer_jobs.job_id(lane)]
    await running.cancel(queued)


async def test_a_lane_is_taken_over_only_once_its_lease_ran_out_then_fenced_off_and_given_to_a_new_job(
    world: World, pool, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    from models import settings

    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-reconcile:{world.tenant.id}")  # no worker takes it
    await world.give(16, "CCR", 1)
    stuck, _ = await starting.start_single(world.users[1], 16, 17)
    (old,) = await leases.of_transfer(stuck.id)
    await transfer_jobs.enqueue(pool, stuck)
    await _started(pool, transfer_jobs.job_id(old))
    assert await leases.hold(old)  # a worker took the lane ...
    await reconcile(pool)
    assert await leases.of_transfer(stuck.id) == [old]  # a live lease is left alone
    await TransferLane.filter(transfer_id=stuck.id).update(lease_until=clock.now() - timedelta(seconds=1))  # ... and died
    with caplog.at_level(logging.WARNING, logger="jobs.transfer"):
        assert await reconcile(pool) >= 1
    (new,) = await leases.of_transfer(stuck.id)
    assert new.generation == old.generation + 1
    assert f"{transfer_jobs.job_id(old)} stopped renewing its lease; {transfer_jobs.job_id(new)} takes over" in caplog.messages
    # Nothing of the dead worker's job is left in Redis; the new generation's job is queued instead.
    dead = transfer_jobs.job_id(old)
    assert not await pool.exists(job_key_prefix + dead, in_progress_key_prefix + dead)
    assert await _queued_jobs(pool, stuck) == [transfer_jobs.job_id(new)]
    # The old job, were it ever run, finds the lane is not its own and applies nothing.
    assert await transfer_jobs.run_lane({"redis": pool}, stuck.id, old.lane, old.generation) == 0
    assert await transfer_jobs.run_lane({"redis": pool}, stuck.id, new.lane, new.generation) == 1
    assert (await Transfer.get(id=stuck.id)).status is TransferStatus.SUCCEEDED
    assert await world.owned(17) == {"CCR": 1}


async def test_a_lease_that_ran_out_while_the_database_was_away_is_left_to_its_holder_for_a_lease(
    world: World, pool, monkeypatch
) -> None:
    """Nobody could renew while the database was away: live holders renew once it is back."""
    from models import db, settings

    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-reconcile:{world.tenant.id}")  # no worker takes it
    await world.give(18, "CCR", 1)
    waiting, _ = await starting.start_single(world.users[1], 18, 19)
    (held,) = await leases.of_transfer(waiting.id)
    assert await leases.hold(held)
    await TransferLane.filter(transfer_id=waiting.id).update(lease_until=clock.now() - timedelta(seconds=1))
    monkeypatch.setattr(db, "_last_unreachable", time.monotonic())  # this worker just saw the database come back
    await reconcile(pool)
    assert await leases.of_transfer(waiting.id) == [held]
    monkeypatch.setattr(db, "_last_unreachable", time.monotonic() - settings.LEASE_SECONDS)  # a lease later
    await reconcile(pool)
    (taken,) = await leases.of_transfer(waiting.id)
    assert taken.generation == held.generation + 1
    await running.cancel(waiting)


async def test_a_backlog_of_queued_jobs_keeps_its_generations_and_its_order_through_every_reconcile(
    world: World, pool, monkeypatch
) -> None:
    """A backlog longer than the reconcile period: each reconcile must leave a queued job where
    it is, or the queue would be reshuffled, its head sent to the back, at every period."""
    from models import settings

    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-backlog:{world.tenant.id}")  # no worker takes it
    backlog = []
    for source in (18, 20, 22, 24):
        await world.stock(source)
        queued, _ = await starting.start_single(world.users[1], source, source + 1)
        await transfer_jobs.enqueue(pool, queued)
        await _age(queued)
        backlog.append(queued)
    jobs = [transfer_jobs.job_id((await leases.of_transfer(t.id))[0]) for t in backlog]
    # The third was taken by a worker that has yet to take its lease; the fourth by one that died
    # before taking it (its in-progress mark is older than a lease): only that one is given again.
    await _started(pool, jobs[2])
    await _started(pool, jobs[3], settings.LEASE_SECONDS + 5)
    before = await pool.zrange(settings.QUEUE_NAME, 0, -1, withscores=True)
    assert [job.decode() for job, _ in before] == jobs
    for _ in range(3):
        await reconcile(pool)
    ours = tuple(f"udt:transfer:{t.id}:".encode() for t in backlog)  # other tests' lost lanes may join the queue
    after = [(job, score) for job, score in await pool.zrange(settings.QUEUE_NAME, 0, -1, withscores=True) if job.startswith(ours)]
    assert [(await leases.of_transfer(t.id))[0].generation for t in backlog] == [1, 1, 1, 2]
    assert after[:3] == before[:3]  # the same jobs, with the same places
    assert [job.decode() for job, _ in after[3:]] == [jobs[3].removesuffix(":1") + ":2"]
    for t in backlog:
        await running.cancel(t)


async def test_a_lease_renewed_between_the_takeovers_read_and_its_update_is_not_taken_over(
    world: World, pool, monkeypatch
) -> None:
    """The interleaving is forced: the holder renews right after the reconciler has read the lease as expired."""
    from contextlib import asynccontextmanager

    from models import settings
    from models.transfers import TransferItem

    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-renewed:{world.tenant.id}")  # no worker takes it
    await world.stock(26)
    slow, _ = await starting.start_single(world.users[1], 26, 27)
    (lane,) = await leases.of_transfer(slow.id)
    await transfer_jobs.enqueue(pool, slow)
    assert await leases.hold(lane)
    await TransferLane.filter(transfer_id=slow.id).update(lease_until=clock.now() - timedelta(seconds=1))
    transaction = leases.in_transaction

    @asynccontextmanager
    async def renewed_first():  # type: ignore[no-untyped-def]
        assert await leases.hold(lane)  # the worker was only late: it renews now
        async with transaction() as db:
            yield db

    monkeypatch.setattr(leases, "in_transaction", renewed_first)
    await reconcile(pool)
    assert await leases.of_transfer(slow.id) == [lane]
    assert await _queued_jobs(pool, slow) == [transfer_jobs.job_id(lane)]
    assert await TransferItem.filter(transfer_id=slow.id).values_list("attempts", flat=True) == [0]
    await running.cancel(slow)


async def _lanes(transfer: Transfer) -> list[tuple[int, bool, bool, str | None]]:
    """Each lane's (generation, finished, lease held, holder), in lane order."""
    rows = await TransferLane.filter(transfer_id=transfer.id).order_by("lane")
    return [(row.generation, row.finished, row.lease_until is not None, row.holder) for row in rows]


async def _by_position(transfer: Transfer, field: str) -> dict[int, object]:
    from models.transfers import TransferItem

    return dict(await TransferItem.filter(transfer_id=transfer.id).values_list("position", field))


async def test_a_takeover_counts_the_dead_holders_attempt_on_its_lanes_first_pending_pair_once(
    world: World, pool, monkeypatch, queue: str
) -> None:
    """The pair a dead holder was on rolled back with it: the takeover counts that attempt, on its
    own lane's next pair only, frees the lease, and a later reconcile takes the lane no further."""
    from models import settings
    from models.transfers import TransferItem

    monkeypatch.setattr(settings, "BULK_LANES", 2)
    bulk = await start_bulk(world, [(10, 20), (11, 21), (12, 22), (13, 23)])  # lane 0: positions 0, 2; lane 1: 1, 3
    lanes = await leases.of_transfer(bulk.id)
    assert await leases.hold(lanes[1])  # a worker took lane 1 ...
    assert await _lanes(bulk) == [(1, False, False, None), (1, False, True, leases.HOLDER)]
    await running.process_item((await TransferItem.get(transfer_id=bulk.id, position=1)).id)  # ... applied its first pair
    await TransferLane.filter(transfer_id=bulk.id, lane=1).update(lease_until=clock.now() - timedelta(seconds=1))  # died
    for _ in range(2):
        await reconcile(pool)
    assert await _by_position(bulk, "attempts") == {0: 0, 1: 1, 2: 0, 3: 1}
    assert await _lanes(bulk) == [(1, False, False, None), (2, False, False, None)]
    assert await _queued_jobs(pool, bulk) == [transfer_jobs.job_id(leases.LaneRef(bulk.id, 1, 2))]
    await running.cancel(bulk)


async def test_a_lane_whose_job_has_run_longer_than_a_lease_renewing_it_is_left_to_that_job(
    world: World, pool, queue: str
) -> None:
    """arq's in-progress mark is as old as the job: past a lease, only a lane without a lease was never held."""
    from models import settings

    long, lane = await _single(world, 28)
    await transfer_jobs.enqueue(pool, long)
    await _age(long)
    await _started(pool, transfer_jobs.job_id(lane), settings.LEASE_SECONDS + 5)  # a lease and more ago
    assert await leases.hold(lane)  # renewed just now
    await reconcile(pool)
    assert await leases.of_transfer(long.id) == [lane]
    assert await _queued_jobs(pool, long) == [transfer_jobs.job_id(lane)]
    await running.cancel(long)


async def test_each_lane_job_applies_and_finishes_only_its_own_lane_and_a_finished_lane_is_never_offered_again(
    world: World, pool, monkeypatch, queue: str
) -> None:
    from models import settings

    monkeypatch.setattr(settings, "BULK_LANES", 2)
    bulk = await start_bulk(world, [(10, 20), (11, 21), (12, 22), (13, 23)])  # lane 0: positions 0, 2; lane 1: 1, 3
    first, second = await leases.of_transfer(bulk.id)
    assert await transfer_jobs.run_lane({"redis": pool}, bulk.id, first.lane, first.generation) == 2
    assert await _by_position(bulk, "status") == {0: "SUCCEEDED", 1: "PENDING", 2: "SUCCEEDED", 3: "PENDING"}
    assert await _lanes(bulk) == [(1, True, False, None), (1, False, False, None)]
    assert await leases.of_transfer(bulk.id) == [second]
    await _age(bulk)
    await reconcile(pool)  # the bulk runs on: only its open lane is offered
    assert await _queued_jobs(pool, bulk) == [transfer_jobs.job_id(second)]
    assert await transfer_jobs.run_lane({"redis": pool}, bulk.id, second.lane, second.generation) == 2
    assert (await Transfer.get(id=bulk.id)).status is TransferStatus.SUCCEEDED


async def test_the_lanes_of_a_cancelled_transfer_are_neither_taken_over_nor_offered(
    world: World, pool, monkeypatch, queue: str
) -> None:
    from models import settings

    monkeypatch.setattr(settings, "BULK_LANES", 2)
    bulk = await start_bulk(world, [(10, 20), (11, 21)])
    held, _ = await leases.of_transfer(bulk.id)
    assert await leases.hold(held)
    await running.cancel(bulk)
    await TransferLane.filter(transfer_id=bulk.id, lane=held.lane).update(lease_until=clock.now() - timedelta(seconds=1))
    await _age(bulk)
    await reconcile(pool)
    assert [generation for generation, *_ in await _lanes(bulk)] == [1, 1]
    assert await _queued_jobs(pool, bulk) == []


async def test_a_lane_handed_over_whose_successor_never_reached_the_queue_is_offered_by_the_next_reconcile(
    world: World, pool, queue: str
) -> None:
    handed, lane = await _single(world, 30)
    assert await leases.hold(lane)
    successor = await leases.hand_over(lane)  # at the end of a slice; then Redis was away
    assert successor == leases.LaneRef(handed.id, lane.lane, lane.generation + 1)
    assert await _lanes(handed) == [(2, False, False, None)]
    assert await leases.hand_over(lane) is None  # the old generation has nothing left to give
    await _age(handed)
    await reconcile(pool)
    assert await _queued_jobs(pool, handed) == [transfer_jobs.job_id(successor)]
    assert await transfer_jobs.run_lane({"redis": pool}, handed.id, successor.lane, successor.generation) == 1
    assert await world.owned(31) == {"CCR": 1}


async def test_a_job_of_a_finished_lane_delivered_again_can_neither_hold_it_nor_hand_it_over(
    world: World, pool, queue: str
) -> None:
    done, lane = await _single(world, 40)
    assert await transfer_jobs.run_lane({"redis": pool}, done.id, lane.lane, lane.generation) == 1
    assert await _lanes(done) == [(1, True, False, None)]
    # The same job again (arq re-runs a job whose worker died before it was marked done):
    assert await transfer_jobs.run_lane({"redis": pool}, done.id, lane.lane, lane.generation) == 0
    assert not await leases.hold(lane)
    assert await leases.hand_over(lane) is None
    assert await _lanes(done) == [(1, True, False, None)]
    assert await _queued_jobs(pool, done) == []


async def test_a_lane_another_reconciler_gave_again_first_does_not_keep_the_next_lost_lane_waiting(
    world: World, pool, monkeypatch, queue: str
) -> None:
    """The interleaving is forced: another worker's reconciler hands the never-held lane over right
    after this one has read the lanes; this one finds it gone and goes on to the next lane."""
    from models import settings

    raced, raced_lane = await _single(world, 32)
    lost, lost_lane = await _single(world, 34)  # committed, never enqueued
    await transfer_jobs.enqueue(pool, raced)
    await _started(pool, transfer_jobs.job_id(raced_lane), settings.LEASE_SECONDS + 5)  # a lease and more ago
    await _age(raced)
    await _age(lost)
    read = leases.waiting

    async def read_then_handed_over_elsewhere() -> list[leases.LaneRef]:
        lanes = await read()
        assert await leases.hand_over(raced_lane) is not None
        return [raced_lane] + [lane for lane in lanes if lane != raced_lane]

    monkeypatch.setattr(leases, "waiting", read_then_handed_over_elsewhere)
    await reconcile(pool)
    assert await _queued_jobs(pool, lost) == [transfer_jobs.job_id(lost_lane)]
    await running.cancel(raced)
    await running.cancel(lost)


async def test_a_job_started_a_moment_less_than_a_lease_ago_is_left_to_take_its_lease(
    world: World, pool, monkeypatch, queue: str
) -> None:
    """The interleaving is forced: the job is marked started as the reconciler reads the lanes,
    so its age is what the test says, to the millisecond."""
    from models import settings

    starting_up, lane = await _single(world, 36)
    await transfer_jobs.enqueue(pool, starting_up)
    await _age(starting_up)
    read = leases.waiting

    async def read_as_marked() -> list[leases.LaneRef]:
        lanes = await read()
        await _started(pool, transfer_jobs.job_id(lane), settings.LEASE_SECONDS - 0.5)
        return lanes

    monkeypatch.setattr(leases, "waiting", read_as_marked)
    await reconcile(pool)
    assert await leases.of_transfer(starting_up.id) == [lane]
    assert await _queued_jobs(pool, starting_up) == [transfer_jobs.job_id(lane)]
    await running.cancel(starting_up)
