"""The reconciler: the database is the source of truth, so work Redis lost is found again."""

from __future__ import annotations

import time
from datetime import timedelta

from arq.constants import job_key_prefix

from graph.core.relay import to_global_id
from jobs import transfer as transfer_jobs
from jobs.transfer import reconcile
from models import clock, leases, running, starting
from models.transfers import Transfer, TransferLane, TransferStatus
from tests.support import Api, World


async def _queued_jobs(pool, transfer: Transfer) -> list[str]:
    from models import settings

    jobs = [job.decode() for job in await pool.zrange(settings.QUEUE_NAME, 0, -1)]
    return [job for job in jobs if job.startswith(f"udt:transfer:{transfer.id}:")]


async def _age(transfer: Transfer, minutes: int = 5) -> None:
    await Transfer.filter(id=transfer.id).update(created_at=transfer.created_at - timedelta(minutes=minutes))


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


async def test_a_lane_is_taken_over_only_once_its_lease_ran_out_then_fenced_off_and_given_to_a_new_job(world: World, pool, monkeypatch) -> None:
    from models import settings

    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-reconcile:{world.tenant.id}")  # no worker takes it
    await world.give(16, "CCR", 1)
    stuck, _ = await starting.start_single(world.users[1], 16, 17)
    (old,) = await leases.of_transfer(stuck.id)
    await transfer_jobs.enqueue(pool, stuck)
    assert await leases.hold(old)  # a worker took the lane ...
    await reconcile(pool)
    assert await leases.of_transfer(stuck.id) == [old]  # a live lease is left alone
    await TransferLane.filter(transfer_id=stuck.id).update(lease_until=clock.now() - timedelta(seconds=1))  # ... and died
    assert await reconcile(pool) >= 1
    (new,) = await leases.of_transfer(stuck.id)
    assert new.generation == old.generation + 1
    # The dead worker's job is gone from the queue; the new generation's is there instead.
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
    from arq.constants import in_progress_key_prefix

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
    marked = transfer_jobs.JOB_TIMEOUT_SECONDS + 10  # as arq marks a job it starts
    await pool.psetex(in_progress_key_prefix + jobs[2], marked * 1000, b"1")
    await pool.psetex(in_progress_key_prefix + jobs[3], int((marked - settings.LEASE_SECONDS - 5) * 1000), b"1")
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
