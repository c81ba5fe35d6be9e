"""The arq worker: its functions, JSON serialisation, timeouts and start-up.

`udt worker` runs one in its own process; `udt dev` runs one inside the API's
event loop.
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.worker import Worker, func

from jobs import connection
from jobs.transfer import reconcile, run_chunk
from models import settings
from models.db import close_db, open_db


async def startup(ctx: dict[str, Any]) -> None:
    ctx["owns_db"] = await open_db()
    await reconcile(ctx)


async def shutdown(ctx: dict[str, Any]) -> None:
    if ctx.get("owns_db"):
        await close_db()


def make_worker(**overrides: Any) -> Worker:
    options: dict[str, Any] = dict(
        functions=[func(run_chunk, timeout=settings.JOB_TIMEOUT_SECONDS, max_tries=20)],
        cron_jobs=[cron(reconcile, second=0, run_at_startup=False, unique=True)],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=connection.redis_settings(),
        queue_name=settings.QUEUE_NAME,
        job_serializer=connection.serialize,
        job_deserializer=connection.deserialize,
        job_timeout=settings.JOB_TIMEOUT_SECONDS,
        # No results are read back; keeping none lets reconcile re-offer a chunk at any time.
        keep_result=0,
        poll_delay=0.2,
    )
    options.update(overrides)
    return Worker(**options)
