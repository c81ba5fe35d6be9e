"""The job functions: work a lane of a transfer; find lanes that lost their job.

Thin on purpose: the rules live in models.running, ownership in models.leases.
A lane's job applies its pairs one by one while a background task renews its
lease, so no clock ever cuts a healthy pair short. After a slice of
`settings.SLICE_SECONDS` the job hands the lane to a successor at the tail of
the queue if other jobs are waiting, so every transfer of every tenant gets its
turn; on SIGTERM it hands over right after the pair in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.exceptions import RedisError

from jobs import event_stream, pair_outcomes, webhooks
from models import leases, running, settings
from models.db import is_unavailable, wait_for_database
from models.leases import LaneRef
from models.transfers import Transfer

log = logging.getLogger(__name__)
# arq always applies a job timeout and cancels a job that reaches it; a lane's
# liveness is its lease instead, so arq's is set beyond any real pair.
JOB_TIMEOUT_SECONDS = 30 * 24 * 3600
# How far ahead of the queue's tail a new transfer's lanes are put (see enqueue_lanes).
NEW_WORK_AHEAD_SECONDS = 60


def job_id(ref: LaneRef) -> str:
    return f"udt:transfer:{ref.transfer_id}:lane:{ref.lane}:{ref.generation}"


async def enqueue_lanes(pool: ArqRedis, refs: Iterable[LaneRef], *, first: bool = False) -> None:
    """Queue the lanes' jobs. arq refuses a job ID it already holds, so offering twice is harmless.

    `first`: the lanes of a transfer just started go ahead of the lanes that handed
    over after a slice (arq takes jobs in score order), so a new transfer, a single
    one above all, never waits behind the turns of running bulk transfers.
    """
    ahead = {"_defer_by": -NEW_WORK_AHEAD_SECONDS} if first else {}
    for ref in refs:
        await pool.enqueue_job(
            "run_lane", ref.transfer_id, ref.lane, ref.generation,
            _job_id=job_id(ref), _queue_name=settings.QUEUE_NAME, **ahead,
        )


async def enqueue(pool: ArqRedis, transfer: Transfer) -> None:
    """Queue every open lane of a transfer (after the commit that started it)."""
    await enqueue_lanes(pool, await leases.of_transfer(transfer.id), first=True)


@contextlib.asynccontextmanager
async def _renewing(ref: LaneRef) -> AsyncIterator[asyncio.Event]:
    """Renew the lane's lease in the background; the event is set if the lane was taken from us."""
    lost = asyncio.Event()

    async def renew() -> None:
        back = False
        while True:
            if not back:
                await asyncio.sleep(settings.LEASE_SECONDS / 3)
            try:
                if not await leases.hold(ref):
                    lost.set()
                    return
                back = False
            except Exception as exc:  # noqa: BLE001 - a database hiccup: try again next time
                log.warning("could not renew the lease of %s: %r", job_id(ref), exc)
                # A database that went away: renewed the moment it is back (see leases.take_over_expired).
                back = is_unavailable(exc) and await wait_for_database() > 0

    task = asyncio.create_task(renew())
    try:
        yield lost
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _others_waiting(redis: ArqRedis) -> bool:
    """Whether a job is ready in the queue that no worker has started (arq keeps a
    running job in the queue until it ends, marked by its in-progress key).

    Read a page at a time: with many workers, the running jobs fill pages ahead of
    the jobs waiting behind them.
    """
    try:
        due, start = int(time.time() * 1000), 0
        while ready := await redis.zrangebyscore(settings.QUEUE_NAME, "-inf", due, start=start, num=100):
            # One snapshot (MULTI): a job that ends after the read above is gone from the queue
            # and from the in-progress keys at once (arq's finish_job), so it is neither
            # running nor waiting; asked only about its in-progress key, it would look waiting.
            async with redis.pipeline(transaction=True) as pipe:
                for job in ready:
                    pipe.exists(in_progress_key_prefix + job.decode())
                    pipe.zscore(settings.QUEUE_NAME, job)
                found = await pipe.execute()
            if any(not running and queued is not None for running, queued in zip(found[::2], found[1::2])):
                return True
            start += len(ready)
        return False
    except RedisError:
        return False  # Redis away: keep working, nobody can be waiting


async def run_lane(ctx: dict[str, Any], transfer_id: int, lane: int, generation: int) -> int:
    """Apply the lane's pending pairs; returns how many this job applied.

    A database that goes away is waited for, and the job carries on from what the
    database says once it is back (every step is idempotent: the lease is fenced, each
    pair claimed). A database that answers at once while the job keeps failing is no
    outage: after `settings.MAX_ATTEMPTS` such resumes the job fails like any other.
    """
    resumed_at_once = 0
    while True:
        try:
            with structlog.contextvars.bound_contextvars(**await pair_outcomes.about(transfer_id)):
                return await _run_lane(ctx, transfer_id, lane, generation)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("%s lost the database (%r)", job_id(LaneRef(transfer_id, lane, generation)), exc)
            if not await wait_for_database():
                resumed_at_once += 1
                if resumed_at_once >= settings.MAX_ATTEMPTS:
                    raise


async def _run_lane(ctx: dict[str, Any], transfer_id: int, lane: int, generation: int) -> int:
    ref = LaneRef(transfer_id, lane, generation)
    if not await leases.hold(ref):
        return 0  # a stale job: the lane belongs to a newer generation, or is done
    redis: ArqRedis = ctx["redis"]
    await event_stream.announce(redis, await running.begin(transfer_id))
    async with _renewing(ref) as lost:
        applied, hand_over = await _work(ref, redis, lost, ctx.get("draining", lambda: False))
    if hand_over and (successor := await leases.hand_over(ref)) is not None:
        await _offer(redis, [successor])
    return applied


async def _work(
    ref: LaneRef, redis: ArqRedis, lost: asyncio.Event, draining: Callable[[], bool]
) -> tuple[int, bool]:
    """Apply pairs until the lane is done or lost (False), or should be handed over (True)."""
    applied = 0
    deadline = time.monotonic() + settings.SLICE_SECONDS
    while batch := await leases.pending_items(ref):
        for item_id in batch:
            # Asked before each pair, never after a lane's last: a lane with nothing left
            # finishes instead of handing an empty turn to a successor.
            if lost.is_set():
                return applied, False  # taken over (we were too slow to renew): the new owner carries on
            if draining():
                return applied, True
            if time.monotonic() > deadline:
                if await _others_waiting(redis):
                    return applied, True
                deadline = time.monotonic() + settings.SLICE_SECONDS
            with structlog.contextvars.bound_contextvars(item_id=item_id):
                started = time.monotonic()
                done = await running.process_item(item_id)
                await event_stream.announce(redis, done)
                await webhooks.offer_ended(redis, done)
                await pair_outcomes.pair_done(done, time.monotonic() - started)
            applied += bool(done)
    await leases.finish(ref)
    return applied, False


async def _offer(redis: ArqRedis, refs: list[LaneRef]) -> None:
    try:
        await enqueue_lanes(redis, refs)
    except (RedisError, OSError) as exc:
        log.warning("could not enqueue %s now (%r); the reconciler will", [job_id(r) for r in refs], exc)


async def _drop(redis: ArqRedis, ref: LaneRef) -> None:
    """Remove a fenced-off job from the queue, so that stale entries never clog its head."""
    key = job_id(ref)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(settings.QUEUE_NAME, key)
        pipe.delete(job_key_prefix + key, in_progress_key_prefix + key)
        await pipe.execute()


async def _started_but_never_held(redis: ArqRedis, ref: LaneRef) -> bool:
    """A worker took the job from the queue but never took the lease: it died in between.

    arq marks the job in progress for JOB_TIMEOUT_SECONDS + 10 s; a job takes its
    lease in its first statement, so a mark older than a lease means nobody will.
    """
    remaining_ms = await redis.pttl(in_progress_key_prefix + job_id(ref))
    if remaining_ms < 0:
        return False
    age = JOB_TIMEOUT_SECONDS + 10 - remaining_ms / 1000
    return age > settings.LEASE_SECONDS


async def reconcile(redis: ArqRedis) -> int:
    """Find lanes whose work was lost, and queue it again; returns how many were offered.

    Every worker runs this every `settings.RECONCILE_SECONDS`, from the database:
    a lane whose lease ran out (its worker died or hung) is fenced off and given to
    a new job; a lane whose job is missing from Redis (lost, Redis restarted empty,
    or an enqueue that failed) gets its job again.
    """
    offered: list[LaneRef] = []
    for old, new in await leases.take_over_expired():
        log.warning("%s stopped renewing its lease; %s takes over", job_id(old), job_id(new))
        await _drop(redis, old)
        offered.append(new)
    for ref in await leases.waiting():
        if await redis.exists(job_key_prefix + job_id(ref)):
            if not await _started_but_never_held(redis, ref):
                continue  # queued, or just starting
            new = await leases.hand_over(ref)
            if new is None:
                continue
            await _drop(redis, ref)
            ref = new
        offered.append(ref)
    await enqueue_lanes(redis, offered)
    return len(offered)
