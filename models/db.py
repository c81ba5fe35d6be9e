"""Opening and closing the database, once per process.

tortoise-orm 1.x keeps its state in a context variable; a server's request
tasks and the worker's job tasks do not inherit it from start-up, so the
context is also made the process-wide fallback.
"""

from __future__ import annotations

from asyncpg.exceptions import InterfaceError as PgClientStateError
from asyncpg.exceptions import InternalClientError as PgClientInternalError
from tortoise import Tortoise

from models import settings


async def open_db(database_url: str | None = None) -> bool:
    """Initialise the ORM unless it already is; True when this call did it (and should close it)."""
    if Tortoise.is_inited():
        return False
    await Tortoise.init(config=settings.tortoise_config(database_url), _enable_global_fallback=True)
    return True


async def close_db() -> None:
    await Tortoise.close_connections()


# PostgreSQL's deadlock_detected and serialization_failure, and a connection that
# was cut (class 08; 57P0x: the server or an administrator ended the backend):
# the transaction was rolled back whole and may simply be run again.
_RETRYABLE_SQLSTATES = {"40P01", "40001", "57P01", "57P02", "57P03"}
MAX_INT = 2**31 - 1  # the largest value of an INTEGER column on both databases


def is_transient(exc: BaseException) -> bool:
    """Whether a transaction failed for a passing reason (another transaction, a dropped
    connection) rather than because of the data: then it is worth running again."""
    seen: BaseException | None = exc
    while seen is not None:
        sqlstate = getattr(seen, "sqlstate", None) or ""
        if sqlstate in _RETRYABLE_SQLSTATES or sqlstate.startswith("08"):
            return True
        # asyncpg's client-side errors: the connection under the transaction closed, or
        # its protocol state broke (seen once under heavy load, before a COMMIT went out:
        # the pair had not committed, and its claim makes running it again safe).
        if isinstance(seen, (ConnectionError, TimeoutError, PgClientStateError, PgClientInternalError)):
            return True
        if "database is locked" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
