"""Benchmark: how long uploaded files take to validate, the worst 20 MB beside the people file (not a test).

    .venv/bin/python benchmarks/upload_validation.py --repeat 3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/upload_validation.py

For each file, the median of --repeat runs, wall time and CPU time (this process's and its
children's: on a shared machine, what the run alone costs), of, in turn:
- csv.reader: the floor, plain `csv.reader` over the same bytes in this process (decode, then
  iterate every record, nothing else);
- read: the file read as the API reads it (models/upload_reader.py: a child process, the file
  through its stdin, the result back);
- validated: the whole of `create_upload` (the read, the rules over up to 2,000 pairs, the
  preview stored), for the tenant's admin, in a throwaway SQLite database or DATABASE_URL's.

The files: the people file of 100,000 users with 2,000 rows filled in, and files of the
largest size allowed (20 MB) of the shapes that cost the most per byte: rows that request
nothing (issue 17's `1,`, `1`, blank lines and rows, quoted blanks, one record of twenty
million cells) then 2,000 pairs that pass every rule, and `1` rows of the Source/Target form,
all of which request a transfer (too many). Issue 17's goal: each validated within 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

os.environ.setdefault("UDT_DATA_DIR", tempfile.mkdtemp(prefix="udt-bench-"))

from models import bulk, settings  # noqa: E402 - after the data dir is chosen
from models.tenancy import Tenant, User  # noqa: E402
from models.upload_reader import read_upload  # noqa: E402
from models.userdata import OwnedRecord  # noqa: E402

LIMIT = settings.MAX_UPLOAD_BYTES
PEOPLE = b"From User ID,To User ID,First Name,Last Name,Username,Email,Status,Tenant Admin,Teams\n"
FIRST_USER = 5000  # the pairs' users: 5000..8999, each even one giving its data to the next


def pairs() -> bytes:
    """2,000 people rows that pass every rule: From u + 1, To u (u's data goes to u + 1)."""
    return b"".join(b"%d,%d\n" % (u + 1, u) for u in range(FIRST_USER, FIRST_USER + 4000, 2))


def filled(head: bytes, line: bytes, tail: bytes = b"") -> bytes:
    """`head`, then `line` again and again, then `tail`: exactly the largest file allowed."""
    room = LIMIT - len(head) - len(tail)
    return head + line * (room // len(line)) + b" " * (room % len(line)) + tail


def people_file() -> bytes:
    """The people file of 100,000 users as the export writes it, 2,000 rows filled in."""
    rows = [b"%d,,First%d,Last%d,user%d,user%d@example.com,Active,No,East; West\n" % ((u,) * 5) for u in range(1, 100_001)]
    for n, row in enumerate(pairs().splitlines(keepends=True)):
        rows[FIRST_USER + 2 * n] = row.rstrip(b"\n") + b",F,L,u,u@example.com,Active,No,East\n"
    return PEOPLE + b"".join(rows)


def files() -> list[tuple[str, bytes]]:
    """The pairs come last, so that no shape is cut short (trailing line ends are not read)."""
    head, tail = b"From User ID,To User ID\n", b"\n" + pairs()
    return [
        ("people file, 100,000 rows, 2,000 filled", people_file()),
        ("`1,` rows (issue 17), then 2,000 pairs", filled(head, b"1,\n", tail)),
        ("`1` rows, then 2,000 pairs", filled(head, b"1\n", tail)),
        ("blank lines, then 2,000 pairs", filled(head, b"\n", tail)),
        ("`,` rows, then 2,000 pairs", filled(head, b",\n", tail)),
        ("`\" \"` rows, then 2,000 pairs", filled(head, b'" "\n', tail)),
        ("one record of commas, then 2,000 pairs", filled(head, b",", tail)),
        ("Source/Target form, `1` rows (too many)", filled(b"Source User ID,Target User ID\n", b"1\n")),
    ]


def plain_csv(data: bytes) -> None:
    for _ in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")):
        pass


def cpu_seconds() -> float:
    """CPU of this process and of its children that have ended (the upload readers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def median(repeat: int, run: Callable[[], Awaitable[object] | object]) -> tuple[float, float]:
    """Median wall and CPU seconds of `run`: on a shared machine the CPU is what this run alone costs."""
    times, cpus = [], []
    for _ in range(repeat):
        began, cpu = time.perf_counter(), cpu_seconds()
        result = run()
        if asyncio.iscoroutine(result):
            await result
        times.append(time.perf_counter() - began)
        cpus.append(cpu_seconds() - cpu)
    return statistics.median(times), statistics.median(cpus)


async def admin_of_a_tenant() -> User:
    """A tenant's admin, and the pairs' users, their sources owning a record each."""
    tenant = await Tenant.create(slug=f"upload-bench-{time.time_ns()}", name="Upload benchmark")
    admin = await User.create(tenant=tenant, user_id=1, first_name="A", last_name="Admin", username="admin", tenant_admin=True)
    ids = range(FIRST_USER, FIRST_USER + 4000)
    await User.bulk_create(
        [User(tenant=tenant, user_id=u, first_name="P", last_name=str(u), username=f"p{u}") for u in ids], batch_size=1000
    )
    sources = await User.filter(tenant=tenant, user_id__in=list(ids[::2])).values_list("id", flat=True)
    await OwnedRecord.bulk_create([OwnedRecord(data_type="CCR", owner_id=pk) for pk in sources], batch_size=1000)
    return admin


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from graph.process.cli import apply_migrations
    from models.db import close_db, open_db

    settings.DATABASE_URL = os.environ.get("DATABASE_URL") or settings.sqlite_url(Path(settings.DATA_DIR) / "bench.sqlite3")
    await apply_migrations()
    await open_db(settings.DATABASE_URL)
    try:
        admin = await admin_of_a_tenant()
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start, "
              f"{settings.DATABASE_URL.split(':')[0]}, median of {args.repeat}")
        print(f"{'file':44} {'MB':>5} {'csv.reader':>11} {'read':>11} {'validated':>11}  (wall/CPU)  result")
        for name, data in files():
            floor = await median(args.repeat, lambda: plain_csv(data))
            read = await median(
                args.repeat, lambda: read_upload(data, max_bytes=LIMIT, max_pairs=settings.MAX_BULK_PAIRS)
            )
            stored: list[object] = []
            validated = await median(args.repeat, lambda: _keep(stored, bulk.create_upload(admin, "f.csv", data)))
            upload = stored[-1]
            outcome = ", ".join(e["code"] for e in upload.errors) or f"{upload.pair_count} pairs, {upload.error_count} errors"
            times = " ".join(f"{wall:5.2f}/{cpu:4.2f}s" for wall, cpu in (floor, read, validated))
            print(f"{name:44} {len(data) / 2**20:5.1f} {times}  {outcome}")
    finally:
        await close_db()


async def _keep(into: list[object], work: Awaitable[object]) -> None:
    into.append(await work)


if __name__ == "__main__":
    asyncio.run(main())
