"""Opening and closing the database, once per process; telling a database that went
away from a transaction that lost a race, and waiting for it to come back.

tortoise-orm 1.x keeps its state in a context variable; a server's request
tasks and the worker's job tasks do not inherit it from start-up, so the
context is also made the process-wide fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from asyncpg.exceptions import InterfaceError as PgClientStateError
from asyncpg.exceptions import InternalClientError as PgClientInternalError
from tortoise import Tortoise, connections

from models import settings
from models.fences.tortoise import init_with_global_fallback

log = logging.getLogger(__name__)


async def open_db(database_url: str | None = None) -> bool:
    """Initialise the ORM unless it already is; True when this call did it (and should close it)."""
    if Tortoise.is_inited():
        return False
    await init_with_global_fallback(settings.tortoise_config(database_url))
    return True


async def close_db() -> None:
    await Tortoise.close_connections()


class DatabaseNotReady(RuntimeError):
    """The database lacks something only its administrator can add (a migration says what)."""


# Another transaction got in the way: PostgreSQL's deadlock_detected and serialization_failure.
_CONFLICT_SQLSTATES = {"40P01", "40001"}
# The database went away under the statement: the server or an administrator ended the
# backend (57P0x), or the connection broke (class 08).
_GONE_SQLSTATES = {"57P01", "57P02", "57P03"}
MAX_INT = 2**31 - 1  # the largest value of an INTEGER column on both databases


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def is_unavailable(exc: BaseException) -> bool:
    """Whether a statement failed because the database could not be reached or its
    connection went away (a restart, a failover, a cut): its transaction rolled back
    whole, and the database is worth waiting for."""
    for seen in _causes(exc):
        sqlstate = getattr(seen, "sqlstate", None) or ""
        if sqlstate in _GONE_SQLSTATES or sqlstate.startswith("08"):
            return True
        # asyncpg's client-side errors: the connection under the transaction closed, or
        # its protocol state broke with it (seen under heavy load too, before a COMMIT
        # went out: the pair had not committed, and its claim makes running it again safe).
        if isinstance(seen, (OSError, TimeoutError, PgClientStateError, PgClientInternalError)):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether a transaction failed for a passing reason (another transaction, the
    database away) rather than because of the data: then it is worth running again."""
    if is_unavailable(exc):
        return True
    for seen in _causes(exc):
        if getattr(seen, "sqlstate", None) in _CONFLICT_SQLSTATES or "database is locked" in str(seen):
            return True
    return False


# When this process last found the database unreachable (time.monotonic()).
_last_unreachable = float("-inf")
_PROBE_TIMEOUT_SECONDS = 5
_MAX_PROBE_DELAY_SECONDS = 1.0


async def wait_for_database() -> float:
    """Return once the database answers a statement; how many seconds that took (0 when
    it answered at once). Probed at most a second apart, so work resumes within about a
    second of the database coming back."""
    global _last_unreachable
    started = time.monotonic()
    delay, failed = 0.1, False
    while True:
        try:
            await asyncio.wait_for(connections.get("default").execute_query("SELECT 1"), _PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - anything short of an answer: not back yet
            if not failed:
                log.warning("the database is unavailable (%r); waiting for it", exc)
            failed, _last_unreachable = True, time.monotonic()
            await asyncio.sleep(delay)
            delay = min(2 * delay, _MAX_PROBE_DELAY_SECONDS)
            continue
        if not failed:
            return 0.0
        waited = time.monotonic() - started
        log.info("the database is back after %.1f s", waited)
        return waited


def reachable_for() -> float:
    """Seconds since this process last found the database unreachable (inf: never)."""
    return time.monotonic() - _last_unreachable
