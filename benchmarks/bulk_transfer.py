"""Benchmark: a 2,000-pair bulk transfer end to end through the API (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/bulk_transfer.py --users 4000 --records-per-user 250 --workers 2

Migrates, seeds a fresh synthetic tenant (`udt seed --synthetic`, timed), starts
the API under uvicorn and N `udt worker` processes, then as a client: uploads
a Source/Target CSV of users/2 pairs, starts it, and follows `transferEvents`
until the terminal event. Prints seeding time, pairs per second and records
per second; with --baseline also the same movement as one plain SQL
transaction per pair (PostgreSQL only), for the ratio.

The journal's cost (issue 8): `--journal off,on` runs the whole thing once per
mode, in that order, each on a tenant of its own: `off` with UDT_REVERT_DAYS=0
for the API and the workers (nothing journaled), `on` with the default window.
It prints both times and their ratio, and on PostgreSQL what each `on` run
added to the journal's tables on disk (pg_total_relation_size, indexes
included: run it on a fresh database, since purged space is reused); `--purge`
then moves the `on` transfers past their window and times the purge of their
journals.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_REVERT_DAYS = 30.0  # the service's default undo window, for the runs with the journal on


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Run:
    mode: str
    slug: str
    pairs: list[tuple[int, int]]
    transfer_id: int
    elapsed: float
    records: int
    journal_bytes: int | None  # what the run added to the journal's tables; None off PostgreSQL
    journal_rows: int


async def main(args: argparse.Namespace) -> None:
    from graph.process.cli import apply_migrations
    from models.db import close_db, open_db

    await apply_migrations()
    await open_db()
    runs = [await run(args, mode) for mode in args.journal.split(",")]
    summary(runs)
    if args.purge:
        await time_purge([r for r in runs if r.mode == "on"])
    if args.baseline:
        await baseline(runs[-1].slug, runs[-1].pairs)
    await close_db()


async def run(args: argparse.Namespace, mode: str) -> Run:
    """Seed a tenant, run the bulk transfer through the API, with the journal on or off."""
    import uvicorn
    from gql import Client, FileVar, GraphQLRequest
    from gql.transport.httpx import HTTPXAsyncTransport
    from gql.transport.websockets import WebsocketsTransport

    from graph.live.websocket import UVICORN
    from graph.server.app import create_app
    from models import seed, settings
    from models.tenancy import ApiToken, User
    from models.transfers import Transfer, TransferItem

    assert mode in ("on", "off"), mode
    # The API decides whether a transfer is journaled; the workers get the same setting.
    settings.REVERT_DAYS = DEFAULT_REVERT_DAYS if mode == "on" else 0
    slug = f"bench-{int(time.time())}"
    print(f"--- journal {mode} ---")
    started = time.perf_counter()
    await seed.seed_synthetic(slug, args.users, args.records_per_user)
    print(f"seed: {args.users} users x ~{args.records_per_user} records in {time.perf_counter() - started:.1f} s")
    admin = await User.get(tenant__slug=slug, username="admin")
    token = await ApiToken.issue(admin)
    user_ids = sorted(await User.filter(tenant__slug=slug, tenant_admin=False).values_list("user_id", flat=True))
    pairs = [(user_ids[i], user_ids[i + 1]) for i in range(0, min(len(user_ids) - 1, 2 * args.pairs), 2)]
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    size_before = await journal_size()

    env = {**os.environ, "UDT_LOG_LEVEL": "WARNING", "UDT_REVERT_DAYS": str(settings.REVERT_DAYS)}
    workers = [subprocess.Popen([sys.executable, "-m", "graph.process.cli", "worker"], cwd=ROOT, env=env) for _ in range(args.workers)]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), port=port, log_level="warning", **UVICORN))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with Client(transport=HTTPXAsyncTransport(url=f"http://127.0.0.1:{port}/graphql", headers=headers, timeout=120)) as http:
            t0 = time.perf_counter()
            upload = await http.execute(
                GraphQLRequest(
                    "mutation ($f: Upload!) { uploadBulkTransferFile(file: $f) { upload { id pairCount errorCount } } }",
                    variable_values={"f": FileVar(io.BytesIO(content.encode()), filename="pairs.csv", content_type="text/csv")},
                ),
                upload_files=True,
            )
            upload = upload["uploadBulkTransferFile"]["upload"]
            print(f"upload + validation of {upload['pairCount']} pairs: {time.perf_counter() - t0:.2f} s ({upload['errorCount']} errors)")
            t1 = time.perf_counter()
            result = await http.execute(
                GraphQLRequest(
                    "mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) { transfer { id } userErrors { code } } }",
                    variable_values={"id": upload["id"]},
                )
            )
        transfer_id = result["startBulkTransfer"]["transfer"]["id"]
        ws = WebsocketsTransport(url=f"ws://127.0.0.1:{port}/graphql", init_payload=headers)
        events = 0
        async with Client(transport=ws) as session:
            request = GraphQLRequest(
                "subscription ($id: ID!) { transferEvents(transferId: $id) { type processedPairs } }",
                variable_values={"id": transfer_id},
            )
            async for message in session.subscribe(request):
                events += 1
                if message["transferEvents"]["type"] in ("SUCCEEDED", "PARTIALLY_FAILED", "FAILED", "CANCELLED"):
                    final = message["transferEvents"]
                    break
        elapsed = time.perf_counter() - t1
    finally:
        server.should_exit = True
        await serving
        for w in workers:
            w.terminate()
            w.wait()

    from graph.core.relay import pk_of

    transfer = await Transfer.get(id=pk_of(transfer_id, "Transfer"))
    assert transfer.journaled == (mode == "on")
    moved = 0
    for item_moved, item_overwritten in await TransferItem.filter(transfer_id=transfer.id).values_list("moved", "overwritten"):
        moved += sum(item_moved.values()) + sum(item_overwritten.values())
    print(f"transfer: {final['type']}, {transfer.processed_pairs} pairs, {moved:,} records moved or overwritten, {events} events")
    print(f"start -> terminal event: {elapsed:.2f} s = {transfer.processed_pairs / elapsed:.0f} pairs/s, {moved / elapsed:,.0f} records/s")
    size_after = await journal_size()
    added = None if size_after is None or size_before is None else size_after - size_before
    return Run(mode, slug, pairs, transfer.id, elapsed, moved, added, await journal_rows(transfer.id))


async def journal_size() -> int | None:
    """Bytes on disk of every journal table, indexes and TOAST included (PostgreSQL only)."""
    from tortoise import Tortoise

    from models.journal import JOURNAL_TABLES

    db = Tortoise.get_connection("default")
    if db.capabilities.dialect != "postgres":
        return None
    sizes = " + ".join(f"pg_total_relation_size('{m._meta.db_table}')" for m in JOURNAL_TABLES)
    _, rows = await db.execute_query(f"SELECT {sizes}")
    return int(rows[0][0])


async def journal_rows(transfer_id: int) -> int:
    from models.journal import JOURNAL_TABLES

    return sum([await m.filter(item__transfer_id=transfer_id).count() for m in JOURNAL_TABLES])


def summary(runs: list[Run]) -> None:
    """Each mode's time, the ratio of the means, and what the journal took on disk."""
    print("--- summary ---")
    for r in runs:
        line = f"journal {r.mode}: {r.elapsed:.2f} s, {len(r.pairs) / r.elapsed:.0f} pairs/s"
        if r.mode == "on":
            line += f", {r.journal_rows:,} journal rows for {r.records:,} records"
            if r.journal_bytes is not None:
                line += f", {r.journal_bytes / 2**20:.1f} MiB on disk = {r.journal_bytes / r.records:.0f} bytes per record"
        print(line)
    mean = {m: statistics.mean(r.elapsed for r in runs if r.mode == m) for m in ("on", "off") if any(r.mode == m for r in runs)}
    if len(mean) == 2:
        print(f"journal on / off: {mean['on'] / mean['off']:.2f}x")


async def time_purge(runs: list[Run]) -> None:
    """Move the journaled transfers past their window and time the purge of their journals."""
    from datetime import timedelta

    from models import purge, settings
    from models.transfers import Transfer

    settings.REVERT_DAYS = DEFAULT_REVERT_DAYS
    for r in runs:
        finished_at = (await Transfer.get(id=r.transfer_id)).finished_at
        await Transfer.filter(id=r.transfer_id).update(finished_at=finished_at - timedelta(days=settings.REVERT_DAYS + 1))
    started = time.perf_counter()
    purged = await purge.purge()
    elapsed = time.perf_counter() - started
    rows = sum(purged.rows.values())
    print(f"purge: {purged.transfers} journals, {rows:,} rows in {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s, "
          f"batches of {purge.BATCH_ROWS:,} rows per table)")




async def baseline(slug: str, pairs: list[tuple[int, int]]) -> None:
    """The floor: the same movement, backwards, as one plain SQL transaction per pair (asyncpg)."""
    import asyncpg

    from models import settings

    conn = await asyncpg.connect(settings.DATABASE_URL.replace("postgres://", "postgresql://", 1))
    pk = dict(await conn.fetch("SELECT u.user_id, u.id FROM app_user u JOIN tenant t ON t.id = u.tenant_id WHERE t.slug = $1", slug))
    overwrite = [
        "ACCUMULATED_VACATION_HOURS", "SKILL_MAPPING", "AGENT_ASSIGNED_EXCEPTION", "PROJECT", "AGENT_WORK_SHIFT",
        "AGENT_SERVICE_PRODUCTIVITY", "AGENT_PRODUCTIVITY", "AGENT_OFFLINE_ACTIVITY_HOURS", "AGENT_GROUP_DAY_ALLOCATION",
        "HISTORICAL_ACTIVITY", "AGENT_WORK_HOURS", "AGENT_REAL_TIME_STATE",
    ]
    started = time.perf_counter()
    for target, source in pairs:  # the targets now own everything: move it back
        s, t = pk[source], pk[target]
        async with conn.transaction():
            await conn.execute("DELETE FROM owned_record WHERE owner_id = $1 AND data_type = ANY($2)", t, overwrite)
            await conn.execute("UPDATE owned_record SET owner_id = $2 WHERE owner_id = $1", s, t)
            await conn.execute("UPDATE evaluation SET evaluator_id = $2 WHERE evaluator_id = $1", s, t)
            await conn.execute("UPDATE evaluation SET approver_id = $2 WHERE approver_id = $1", s, t)
            await conn.execute("DELETE FROM agent_schedule WHERE user_id = $1", t)
            await conn.execute("UPDATE agent_schedule SET user_id = $2 WHERE user_id = $1", s, t)
    elapsed = time.perf_counter() - started
    await conn.close()
    print(f"baseline, plain SQL, one transaction per pair: {elapsed:.2f} s = {len(pairs) / elapsed:.0f} pairs/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--records-per-user", type=int, default=250)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--journal", default="on", help="modes to run in order, e.g. off,on (default: on)")
    parser.add_argument("--purge", action="store_true", help="then time the purge of the journaled runs' journals")
    asyncio.run(main(parser.parse_args()))
