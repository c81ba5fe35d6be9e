"""The arq worker: its function, JSON serialisation, the reconciler and the purge,
draining, and a main loop that outlives Redis.

`udt worker` runs one in its own process; `udt dev` runs one inside the API's
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.worker import Worker, func
from redis.exceptions import RedisError

from jobs import connection, metrics
from jobs import webhooks as webhook_jobs
from jobs.transfer import JOB_TIMEOUT_SECONDS, reconcile, run_lane
from models import settings, webhook_deliveries
from models.db import close_db, is_unavailable, open_db, wait_for_database
from models.purge import purge

log = logging.getLogger(__name__)


async def _forever(what: str, task: Callable[[], Awaitable[object]], period: Callable[[], float]) -> None:
    """Run `task` now and then every `period()` seconds, whatever happens to one run."""
    while True:
        try:
            await task()
        except Exception as exc:  # noqa: BLE001 - Redis or the database away: next round
            log.warning("%s failed: %r", what, exc)
            if is_unavailable(exc):  # also marks the outage, which leases' takeover honours
                await wait_for_database()
        await asyncio.sleep(period())


# Every worker runs these beside its jobs, from the database: the reconciler looks for
# lost lanes every RECONCILE_SECONDS, and the sweep for webhook deliveries due that no
# job holds (lost, their worker dead, or retries whose time came); the purge deletes expired journals and
# idempotency keys every PURGE_SECONDS, first at start-up, so that workers restarted
# more often than that still purge.
_LOOPS = ("reconciler", "webhook_sweep", "purger", "webhook_worker")


async def startup(ctx: dict[str, Any]) -> None:
    metrics.watch_backlog(ctx["redis"])
    if "reconciler" in ctx:
        return  # the main loop restarted after a Redis outage
    ctx["owns_db"] = await open_db()
    redis = ctx["redis"]
    ctx["reconciler"] = asyncio.create_task(
        _forever("reconcile", lambda: reconcile(redis), lambda: settings.RECONCILE_SECONDS)
    )
    ctx["webhook_sweep"] = asyncio.create_task(
        _forever("webhook sweep", lambda: webhook_jobs.sweep(redis), lambda: settings.RECONCILE_SECONDS)
    )
    ctx["purger"] = asyncio.create_task(_forever("purge", purge, lambda: settings.PURGE_SECONDS))
    ctx["webhooks"] = make_webhook_worker()
    ctx["webhook_worker"] = asyncio.create_task(keep_running(ctx["webhooks"]))


async def shutdown(ctx: dict[str, Any]) -> None:
    for name in _LOOPS:
        loop = ctx.pop(name, None)
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    if "webhooks" in ctx:  # an attempt in flight is abandoned: its lease runs out, the sweep offers it again
        with contextlib.suppress(Exception):
            await ctx.pop("webhooks").close()
    if ctx.get("owns_db"):
        await close_db()


def make_worker(**overrides: Any) -> Worker:
    options: dict[str, Any] = dict(
        functions=[func(run_lane, timeout=JOB_TIMEOUT_SECONDS)],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=connection.redis_settings(),
        queue_name=settings.QUEUE_NAME,
        job_serializer=connection.serialize,
        job_deserializer=connection.deserialize,
        job_timeout=JOB_TIMEOUT_SECONDS,
        max_jobs=settings.WORKER_MAX_JOBS,
        # No results are read back; keeping none lets the reconciler offer a job ID again.
        keep_result=0,
        poll_delay=0.2,
        # SIGTERM: take no new job, let the running ones hand over after their pair in flight.
        job_completion_wait=settings.DRAIN_SECONDS,
    )
    options.update(overrides)
    worker = Worker(**options)
    worker.ctx["draining"] = lambda: not worker.allow_pick_jobs
    return worker


def make_webhook_worker() -> Worker:
    """The webhook deliveries' worker, inside a worker process (started by `startup`): its own
    queue and job slots, so receivers that never answer hold up only other webhooks."""
    return Worker(
        functions=[func(webhook_jobs.deliver_webhook, timeout=webhook_deliveries.lease().total_seconds())],
        redis_settings=connection.redis_settings(),
        queue_name=webhook_jobs.queue_name(),
        job_serializer=connection.serialize,
        job_deserializer=connection.deserialize,
        max_jobs=settings.WEBHOOK_MAX_JOBS,
        keep_result=0,
        poll_delay=0.2,
        handle_signals=False,  # the lanes' worker owns the signals and stops this one
    )


async def keep_running(worker: Worker) -> None:
    """arq's main loop, started again whenever Redis fails under it.

    arq ends its loop at the first Redis error; the database holds every lane, so
    the worker waits for Redis to come back (even empty) and the reconciler queues
    what was lost.
    """
    while True:
        try:
            await worker.main()
            return
        except (RedisError, OSError) as exc:
            log.warning("Redis is unavailable (%r); trying again in 1 s", exc)
            await asyncio.sleep(1)


def run(worker: Worker) -> None:
    """Like arq's `Worker.run`, with `keep_running` as the main task (signals cancel it)."""
    worker.main_task = worker.loop.create_task(keep_running(worker))
    try:
        worker.loop.run_until_complete(worker.main_task)
    except asyncio.CancelledError:
        pass  # SIGTERM or SIGINT, after the drain
    finally:
        worker.loop.run_until_complete(worker.close())
