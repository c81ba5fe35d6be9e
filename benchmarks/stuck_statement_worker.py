"""A real `udt worker` whose pairs, after HANG_AFTER of them, run a long statement
inside their transaction (for benchmarks/recovery.py; not a test).

Where tests/slow_worker.py leaves the pair's connection idle in its transaction
(PostgreSQL notices a killed client at once), this one keeps PostgreSQL busy
with `SELECT pg_sleep(STATEMENT_SECONDS)`: the backend outlives a killed worker,
holding the pair's row locks, until `client_connection_check_interval` notices.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graph.process.cli import main  # noqa: E402
from models import engine  # noqa: E402

HANG_AFTER = int(os.environ.get("HANG_AFTER", "-1"))
STATEMENT_SECONDS = float(os.environ.get("STATEMENT_SECONDS", "30"))
_apply = engine.apply_pair
_started = 0


async def stuck_apply(source_pk, target_pk, db, **options):  # type: ignore[no-untyped-def]
    global _started
    done = await _apply(source_pk, target_pk, db, **options)
    _started += 1
    if 0 <= HANG_AFTER < _started:
        await db.execute_query("SELECT pg_sleep($1)", [STATEMENT_SECONDS])
    return done


engine.apply_pair = stuck_apply
main(["worker"])
