"""Benchmark: one pair whose source owns millions of records, through a real worker (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/huge_pair.py --records 10000000

Issue 6: "a pair whose source owns about 10 million records ... No fixed time
limit may kill a healthy pair that is making progress."

Seeds a synthetic tenant of two users (`udt seed --synthetic`, no records),
gives the source --records owned_record rows over every shared data type
(`INSERT ... SELECT generate_series`) and the target --target-records, then
VACUUM ANALYZE. Starts a single transfer (models.running) and one `udt
worker` at the default lease (UDT_LEASE_SECONDS 10): times start -> SUCCEEDED
while watching the lane's lease being renewed, and checks that the pair ran
once (one attempt, the lane's generation unchanged while it ran, no takeover
in the worker's log) and moved every record exactly once (counts before and
after, the source's id range). The baseline, after another VACUUM: the same
DELETE and UPDATEs as plain SQL in one transaction, moving the records back.
Deletes the tenant's records afterwards (VACUUM FULL). PostgreSQL only; mind
the disk (about 2 GB at 10 million).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD_JOB_TIMEOUT_SECONDS = 60  # before leases: arq cancelled a chunk running longer than this


def _gb(path: str = "/") -> str:
    return f"{shutil.disk_usage(path).free / 1e9:.1f} GB free"


async def _sql(query: str, *values: object) -> list[dict]:
    from tortoise import connections

    return await connections.get("default").execute_query_dict(query, list(values))


async def _counts(source: int, target: int, first_id: int, last_id: int, overwrite: list[str]) -> dict[str, int]:
    (row,) = await _sql(
        "SELECT count(*) FILTER (WHERE owner_id = $1) AS source, count(*) FILTER (WHERE owner_id = $2) AS target,"
        " count(*) FILTER (WHERE owner_id = $2 AND data_type = ANY($5)) AS target_overwrite,"
        " count(*) FILTER (WHERE id BETWEEN $3 AND $4) AS source_range,"
        " count(*) FILTER (WHERE id BETWEEN $3 AND $4 AND owner_id = $2) AS source_range_on_target"
        " FROM owned_record WHERE owner_id IN ($1, $2)",
        source, target, first_id, last_id, overwrite,
    )
    return dict(row)


async def _vacuum(what: str = "ANALYZE") -> float:
    started = time.perf_counter()
    await _sql(f"VACUUM ({what}) owned_record")
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    from graph.process.cli import apply_migrations
    from models import seed, settings, starting
    from models.db import close_db, open_db
    from models.tenancy import User
    from models.transfers import Transfer, TransferItem, TransferLane
    from models.userdata import DATA_TYPES, OWNED, Policy
    from tests.processes import enqueue

    if not settings.DATABASE_URL.startswith("postgres"):
        raise SystemExit("PostgreSQL only: set DATABASE_URL=postgres://...")
    settings.QUEUE_NAME = f"udt:bench-huge-pair:{os.getpid()}"
    types = [dt.key for dt in DATA_TYPES if dt.storage is OWNED]
    overwrite = [dt.key for dt in DATA_TYPES if dt.storage is OWNED and dt.policy is Policy.OVERWRITE]
    slug = f"bench-huge-{int(time.time())}"
    await apply_migrations()
    await open_db()
    print(f"before seeding: {_gb()}")
    await seed.seed_synthetic(slug, 2, 0)
    operator = await User.get(tenant__slug=slug, username="admin")
    source = await User.get(tenant__slug=slug, user_id=2)
    target = await User.get(tenant__slug=slug, user_id=3)
    insert = (
        "INSERT INTO owned_record (data_type, owner_id, payload, created_at)"
        " SELECT ($1::text[])[1 + g % cardinality($1::text[])], $2, '{}', now() FROM generate_series(1, $3::int) g"
    )
    started = time.perf_counter()
    await _sql(insert, types, source.id, args.records)
    await _sql(insert, types, target.id, args.target_records)
    seeding = time.perf_counter() - started
    vacuum = await _vacuum()
    (ids,) = await _sql("SELECT min(id) AS first, max(id) AS last FROM owned_record WHERE owner_id = $1", source.id)
    before = await _counts(source.id, target.id, ids["first"], ids["last"], overwrite)
    print(
        f"seed: source owns {before['source']:,} records, target {before['target']:,} "
        f"({before['target_overwrite']:,} of OVERWRITE types) in {seeding:.1f} s, VACUUM ANALYZE {vacuum:.1f} s; {_gb()}"
    )

    env = {**os.environ, "UDT_QUEUE_NAME": settings.QUEUE_NAME, "UDT_LOG_LEVEL": "WARNING"}
    env.pop("UDT_LEASE_SECONDS", None)  # the default lease: the pair must outlive many of them
    logs = Path(tempfile.mkdtemp(prefix="udt-bench-huge-pair-"))
    with (logs / "worker.log").open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "graph.process.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        transfer, problems = await starting.start_single(operator, source.user_id, target.user_id)
        assert not problems, problems
        started = time.perf_counter()
        await enqueue(transfer)
        leases_seen: set = set()
        generations: set = set()  # while the pair runs: a takeover would bump it
        last_print = 0.0
        while not (done := await Transfer.get(id=transfer.id)).status.finished:
            (lane,) = await TransferLane.filter(transfer_id=transfer.id).values_list("lease_until", "generation")
            if lane[0] is not None:
                leases_seen.add(lane[0])
            generations.add(lane[1])
            elapsed = time.perf_counter() - started
            if elapsed - last_print >= 10:
                last_print = elapsed
                print(f"  {elapsed:6.1f} s: {done.status.value}, lane generation {lane[1]}, lease renewed {max(0, len(leases_seen) - 1)} times")
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited ({worker.returncode}); see {logs}")
            await asyncio.sleep(0.25)
        pair_seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait()

    item = await TransferItem.get(transfer_id=transfer.id)
    taken_over = (logs / "worker.log").read_text().count("stopped renewing its lease")
    after = await _counts(source.id, target.id, ids["first"], ids["last"], overwrite)
    moved, deleted = sum(item.moved.values()), sum(item.overwritten.values())
    print(
        f"service: {done.status.value} in {pair_seconds:.1f} s (start -> SUCCEEDED), one worker, lease "
        f"{settings.LEASE_SECONDS:g} s renewed {max(0, len(leases_seen) - 1)} times; attempts {item.attempts}, "
        f"lane generations while it ran {sorted(generations)}, takeovers logged {taken_over}"
    )
    print(f"  the pair reports {moved:,} records moved, {deleted:,} overwritten")
    print(
        f"  after: source owns {after['source']:,}, target {after['target']:,}; of the source's {before['source_range']:,} "
        f"records (ids {ids['first']}..{ids['last']}) {after['source_range']:,} exist, {after['source_range_on_target']:,} on the target"
    )
    exact = (
        done.status.value == "SUCCEEDED" and item.attempts == 1 and generations == {1} and not taken_over
        and after["source"] == 0 and moved == before["source"] == after["source_range_on_target"] == after["source_range"]
        and deleted == before["target_overwrite"]
        and after["target"] == before["source"] + before["target"] - before["target_overwrite"]
    )
    print(f"  every record moved exactly once: {'yes' if exact else 'NO'}")
    if pair_seconds > OLD_JOB_TIMEOUT_SECONDS:
        print(f"  (arq's old job timeout, UDT_JOB_TIMEOUT_SECONDS {OLD_JOB_TIMEOUT_SECONDS}, would have cancelled it at {OLD_JOB_TIMEOUT_SECONDS} s)")

    vacuum = await _vacuum()
    baseline = await _baseline(target.id, source.id, overwrite)
    back = await _counts(source.id, target.id, ids["first"], ids["last"], overwrite)
    print(
        f"baseline, plain SQL in one transaction (asyncpg), the records moved back after VACUUM ({vacuum:.1f} s): "
        f"{baseline:.1f} s for {back['source']:,} records; service / baseline = {pair_seconds / baseline:.2f}x"
    )
    started = time.perf_counter()
    await _sql("DELETE FROM owned_record WHERE owner_id IN ($1, $2)", source.id, target.id)
    await _vacuum("FULL")
    print(f"clean-up (DELETE + VACUUM FULL): {time.perf_counter() - started:.1f} s; {_gb()}; worker log: {logs}")
    await close_db()


async def _baseline(source: int, target: int, overwrite: list[str]) -> float:
    """The pair as plain SQL: the engine's DELETE and UPDATEs, without its counts or bookkeeping."""
    import asyncpg

    from models import settings

    conn = await asyncpg.connect(settings.DATABASE_URL.replace("postgres://", "postgresql://", 1))
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("DELETE FROM owned_record WHERE owner_id = $1 AND data_type = ANY($2)", target, overwrite)
            await conn.execute("UPDATE owned_record SET owner_id = $2 WHERE owner_id = $1", source, target)
            await conn.execute("UPDATE evaluation SET evaluator_id = $2 WHERE evaluator_id = $1", source, target)
            await conn.execute("UPDATE evaluation SET approver_id = $2 WHERE approver_id = $1", source, target)
            await conn.execute("DELETE FROM agent_schedule WHERE user_id = $1", target)
            await conn.execute("UPDATE agent_schedule SET user_id = $2 WHERE user_id = $1", source, target)
        return time.perf_counter() - started
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000, help="owned by the source")
    parser.add_argument("--target-records", type=int, default=1000, help="owned by the target, over every type")
    asyncio.run(main(parser.parse_args()))
