"""Benchmark: the people file streams in constant memory (not a test).

    .venv/bin/python benchmarks/people_export.py            # SQLite under ./var
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/people_export.py

Seeds tenants of 10,000 and 100,000 users (no records), streams each one's
people file the way GET /exports/people.csv does, and prints the rows, the
time and the peak Python memory allocated while streaming (tracemalloc). The
peak should not grow with the number of users.
"""

from __future__ import annotations

import asyncio
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def main() -> None:
    from graph.cli import apply_migrations
    from models import seed
    from models.db import close_db, open_db
    from models.reports import people_csv
    from models.tenancy import User

    await apply_migrations()
    await open_db()
    for users in (10_000, 100_000):
        slug = f"people-{users}-{int(time.time())}"
        await seed.seed_synthetic(slug, users, records_per_user=0)
        admin = await User.get(tenant__slug=slug, username="admin")
        tracemalloc.start()
        started, rows, size = time.perf_counter(), 0, 0
        async for chunk in people_csv(admin):
            rows += chunk.count("\n")
            size += len(chunk)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{users:>7,} users: {rows - 1:,} rows, {size / 1e6:.1f} MB of CSV in {elapsed:.2f} s, peak {peak / 1e6:.1f} MB allocated")
    await close_db()


if __name__ == "__main__":
    asyncio.run(main())
