"""Benchmark: from the database coming back to the first pair committed (not a test).

    .venv/bin/python benchmarks/database_outage.py --rounds 5 --down 2.4 --down 20

Issue 17: "once it is back, work resumes within 15 s". Each round builds what
tests/test_database_outage.py builds (a PostgreSQL server of its own, initdb into a
temporary directory, so the machine's shared server is never touched; a private
Redis; `udt serve`; one worker at the default settings: tests/slow_worker.py without
its delay), starts a bulk of --pairs pairs, stops the database with `pg_ctl stop -m
fast` once a fifth of them are applied, keeps it down --down seconds, starts it, and
reads from the transfer's record of events when the first pair after that was
committed. Then it checks the bulk ended SUCCEEDED with every pair once and no
attempt used up by the outage.
Needs PostgreSQL's server programs (and, as root, the postgres OS user).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytest

# `udt serve` needs the key that signs download links; a benchmark's API makes links with this one.
os.environ.setdefault("UDT_SECRET_KEY", secrets.token_urlsafe(32))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_database_outage import (  # noqa: E402
    assert_every_pair_applied_once,
    resumed_after,
    service_stack,
    start_bulk,
    take_away,
)


async def one_round(pairs: int, down: float) -> tuple[float, float]:
    """(seconds the database was down, seconds from its return to the first pair committed)."""
    with tempfile.TemporaryDirectory(prefix="udt-bench-outage-") as directory:
        async with service_stack(Path(directory), pairs, UDT_LOG_LEVEL="WARNING") as stack:
            gid, before = await start_bulk(stack)
            went, back = await take_away(stack, pairs // 5, down)
            await assert_every_pair_applied_once(stack, gid, before, attempts=1)
            return back - went, await resumed_after(stack, went, back)


async def main(args: argparse.Namespace) -> None:
    for down in args.down:
        resumes = []
        for i in range(args.rounds):
            started = time.perf_counter()
            try:
                was_down, resumed = await one_round(args.pairs, down)
            except pytest.skip.Exception as exc:
                raise SystemExit(f"cannot run here: {exc}") from None
            resumes.append(resumed)
            print(
                f"down {down:g} s, round {i + 1}: down for {was_down:.1f} s, first pair committed "
                f"{resumed:.2f} s after it was back (round {time.perf_counter() - started:.0f} s)"
            )
        print(
            f"down {down:g} s, {args.rounds} rounds: min {min(resumes):.2f} s, "
            f"median {statistics.median(resumes):.2f} s, max {max(resumes):.2f} s\n"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--down", type=float, action="append", help="seconds the database stays down (repeatable)")
    arguments = parser.parse_args()
    arguments.down = arguments.down or [2.4]
    asyncio.run(main(arguments))
