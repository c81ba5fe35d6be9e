"""Benchmark: a single transfer while bulks run, and two tenants' bulks side by side (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/fairness.py --workers 2

Issue 6: "a single transfer started while any bulk runs must finish within 2 s
(same worker count), and two tenants' bulks must progress side by side".

Seeds three synthetic tenants (A: the big bulk, B: single transfers, C: the
second bulk), starts the API (`udt serve`) and N `udt worker` processes at
default settings, then as a client over GraphQL: times single transfers of
tenant B (startTransfer -> `transfer(id)` polled every 25 ms until SUCCEEDED)
with nothing else running (the baseline), then every --every seconds while
tenant A's 2,000-pair bulk runs, and while tenant C's bulk (started
--second-after seconds into A's) runs beside it; and again once both are done.
Prints the latencies beside the baseline (with the median time queued and
running, from the transfer's createdAt, startedAt and finishedAt) and both
bulks' processed pairs every 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# `udt serve` needs the key that signs download links; a benchmark's API makes links with this one.
os.environ.setdefault("UDT_SECRET_KEY", secrets.token_urlsafe(32))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 2.0
START_SINGLE = """
mutation ($s: Int!, $t: Int!) {
  startTransfer(input: {sourceUserId: $s, targetUserId: $t, confirm: true}) { transfer { id } userErrors { code message } }
}"""
STATUS = "query ($id: ID!) { transfer(id: $id) { status processedPairs totalPairs } }"
TIMES = "query ($id: ID!) { transfer(id: $id) { createdAt startedAt finishedAt } }"
UPLOAD = "mutation ($f: Upload!) { uploadBulkTransferFile(file: $f) { upload { id pairCount errorCount } } }"
START_BULK = """
mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) { transfer { id } userErrors { code message } } }"""
FINISHED = {"SUCCEEDED", "PARTIALLY_FAILED", "FAILED", "CANCELLED"}


class Tenant:
    """A seeded synthetic tenant and a GraphQL session as its admin."""

    def __init__(self, slug: str, user_ids: list[int], token: str) -> None:
        self.slug, self.user_ids, self.token = slug, user_ids, token
        self.session = None

    async def execute(self, query: str, upload: bool = False, **variables):  # type: ignore[no-untyped-def]
        from gql import GraphQLRequest

        return await self.session.execute(GraphQLRequest(query, variable_values=variables), upload_files=upload)

    def pairs(self) -> list[tuple[int, int]]:
        ids = self.user_ids
        return [(ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2)]


async def _seed(slug: str, users: int, records: int) -> Tenant:
    from models import seed
    from models.tenancy import ApiToken, User

    started = time.perf_counter()
    await seed.seed_synthetic(slug, users, records)
    admin = await User.get(tenant__slug=slug, username="admin")
    ids = sorted(await User.filter(tenant__slug=slug, tenant_admin=False).values_list("user_id", flat=True))
    print(f"seed {slug}: {users} users x ~{records} records in {time.perf_counter() - started:.1f} s")
    return Tenant(slug, ids, await ApiToken.issue(admin))


@dataclass
class Single:
    latency: float  # startTransfer -> SUCCEEDED, as a client sees it
    queued: float  # the server's createdAt -> startedAt: waiting for a worker slot
    running: float  # startedAt -> finishedAt: the pair


async def _single(tenant: Tenant, pair: tuple[int, int]) -> Single:
    started = time.perf_counter()
    result = await tenant.execute(START_SINGLE, s=pair[0], t=pair[1])
    payload = result["startTransfer"]
    if payload["userErrors"]:
        raise SystemExit(f"startTransfer refused: {payload['userErrors']}")
    transfer_id = payload["transfer"]["id"]
    while (status := (await tenant.execute(STATUS, id=transfer_id))["transfer"]["status"]) not in FINISHED:
        await asyncio.sleep(0.025)
    latency = time.perf_counter() - started
    if status != "SUCCEEDED":
        raise SystemExit(f"single transfer {transfer_id} ended {status}")
    times = {k: datetime.fromisoformat(v) for k, v in (await tenant.execute(TIMES, id=transfer_id))["transfer"].items()}
    return Single(
        latency,
        (times["startedAt"] - times["createdAt"]).total_seconds(),
        (times["finishedAt"] - times["startedAt"]).total_seconds(),
    )


async def _start_bulk(tenant: Tenant, pairs: list[tuple[int, int]]) -> str:
    from gql import FileVar

    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    file = FileVar(io.BytesIO(content.encode()), filename="pairs.csv", content_type="text/csv")
    upload = (await tenant.execute(UPLOAD, upload=True, f=file))["uploadBulkTransferFile"]["upload"]
    assert upload["errorCount"] == 0, upload
    payload = (await tenant.execute(START_BULK, id=upload["id"]))["startBulkTransfer"]
    if payload["userErrors"]:
        raise SystemExit(f"startBulkTransfer refused: {payload['userErrors']}")
    return payload["transfer"]["id"]


def _summary(singles: list[Single]) -> str:
    latencies = [s.latency for s in singles]
    over = sum(x > TARGET_SECONDS for x in latencies)
    return (
        f"n={len(latencies)}, median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s, "
        f"{over} over {TARGET_SECONDS:g} s (median queued {statistics.median(s.queued for s in singles):.2f} s, "
        f"running {statistics.median(s.running for s in singles):.2f} s)"
    )


async def main(args: argparse.Namespace) -> None:
    from gql import Client
    from gql.transport.httpx import HTTPXAsyncTransport

    from graph.process.cli import apply_migrations
    from models import settings
    from models.db import close_db, open_db
    from tests.support import free_port

    queue = f"udt:bench-fairness:{os.getpid()}"
    stamp = int(time.time())
    await apply_migrations()
    await open_db()
    a = await _seed(f"bench-a-{stamp}", args.users, args.records_per_user)
    b = await _seed(f"bench-b-{stamp}", args.single_users, args.records_per_user)
    c = await _seed(f"bench-c-{stamp}", args.second_users, args.records_per_user)
    await close_db()

    env = {**os.environ, "UDT_QUEUE_NAME": queue, "UDT_LOG_LEVEL": "WARNING"}
    if args.max_jobs:
        env["UDT_WORKER_MAX_JOBS"] = str(args.max_jobs)
    logs = Path(tempfile.mkdtemp(prefix="udt-bench-fairness-"))
    port = free_port()
    processes = []
    for i in range(args.workers):
        with (logs / f"worker-{i}.log").open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "graph.process.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log))
    with (logs / "api.log").open("wb") as log:
        processes.append(
            subprocess.Popen([sys.executable, "-m", "graph.process.cli", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log)
        )
    print(
        f"{args.workers} workers (UDT_WORKER_MAX_JOBS {args.max_jobs or settings.WORKER_MAX_JOBS}, UDT_BULK_LANES {settings.BULK_LANES}, "
        f"UDT_SLICE_SECONDS {settings.SLICE_SECONDS:g}), API on port {port}, logs in {logs}"
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        for tenant in (a, b, c):
            transport = HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {tenant.token}"}, timeout=120)
            tenant.session = await Client(transport=transport).connect_async()
        await _until_api_answers(b)
        singles = iter(b.pairs())
        await _single(b, next(singles))  # warm-up: imports, connection pools, the workers' first job
        before = [await _single(b, next(singles)) for _ in range(args.baseline_singles)]

        bulk_a = await _start_bulk(a, a.pairs()[: args.pairs])
        t0 = time.perf_counter()
        during: dict[str, list[Single]] = {"bulk A": [], "bulks A + C": []}
        progress: list[tuple[float, int, int]] = []
        state = {"c": None}

        async def status(tenant: Tenant, transfer_id: str | None) -> dict:
            if transfer_id is None:
                return {"status": "QUEUED", "processedPairs": 0, "totalPairs": 0}
            return (await tenant.execute(STATUS, id=transfer_id))["transfer"]

        async def sample() -> None:
            while True:
                now = time.perf_counter() - t0
                sa, sc = await status(a, bulk_a), await status(c, state["c"])
                progress.append((now, sa["processedPairs"], sc["processedPairs"]))
                if sa["status"] in FINISHED and sc["status"] in FINISHED:
                    return
                await asyncio.sleep(2 - (time.perf_counter() - t0 - now))

        async def second_bulk() -> None:
            await asyncio.sleep(args.second_after)
            state["c"] = await _start_bulk(c, c.pairs()[: args.second_pairs])

        async def singles_while_bulks_run() -> None:
            while (await status(a, bulk_a))["status"] not in FINISHED:
                tick = time.perf_counter()
                phase = "bulk A" if state["c"] is None else "bulks A + C"
                pair = next(singles, None)
                if pair is None:
                    print("tenant B ran out of pairs; stopping the singles (seed more with --single-users)")
                    return
                during[phase].append(await _single(b, pair))
                await asyncio.sleep(max(0.0, args.every - (time.perf_counter() - tick)))

        await asyncio.gather(sample(), second_bulk(), singles_while_bulks_run())
        after = [await _single(b, next(singles)) for _ in range(args.baseline_singles)]
        final_a, final_c = await status(a, bulk_a), await status(c, state["c"])
    finally:
        for tenant in (a, b, c):
            if tenant.session is not None:
                await tenant.session.client.close_async()
        for process in processes:
            process.terminate()
            process.wait()

    print(f"\nsingle transfer of tenant B, startTransfer -> SUCCEEDED (target {TARGET_SECONDS:g} s):")
    print(f"  baseline, nothing else running, before: {_summary(before)}")
    for phase, latencies in during.items():
        if latencies:
            print(f"  while {phase} run{'s' if phase == 'bulk A' else ''}: {_summary(latencies)}")
    print(f"  baseline, nothing else running, after:  {_summary(after)}")
    print(f"  every latency while bulks ran: {' '.join(f'{x.latency:.2f}' for x in during['bulk A'] + during['bulks A + C'])}")
    print(f"\nbulk A ({final_a['totalPairs']} pairs, {final_a['status']}) and bulk C ({final_c['totalPairs']} pairs, "
          f"{final_c['status']}), C started {args.second_after:g} s into A; processed pairs:")
    print(f"  {'t':>5}  {'A':>5}  {'C':>5}")
    for at, pa, pc in progress:
        print(f"  {at:5.1f}  {pa:5d}  {pc:5d}")


async def _until_api_answers(tenant: Tenant) -> None:
    for _ in range(200):
        try:
            await tenant.execute("{ viewer { tenant { slug } } }")
            return
        except Exception:  # noqa: BLE001 - still starting: connection refused
            await asyncio.sleep(0.1)
    raise SystemExit("the API did not answer")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=4000, help="of tenant A")
    parser.add_argument("--pairs", type=int, default=2000, help="of tenant A's bulk")
    parser.add_argument("--records-per-user", type=int, default=50)
    parser.add_argument("--single-users", type=int, default=200, help="of tenant B, two per single transfer")
    parser.add_argument("--second-users", type=int, default=2000, help="of tenant C")
    parser.add_argument("--second-pairs", type=int, default=1000, help="of tenant C's bulk")
    parser.add_argument("--second-after", type=float, default=8, help="seconds into A's bulk")
    parser.add_argument("--every", type=float, default=2, help="seconds between single transfers")
    parser.add_argument("--baseline-singles", type=int, default=5)
    parser.add_argument("--max-jobs", type=int, help="UDT_WORKER_MAX_JOBS of the workers (default: the service's)")
    asyncio.run(main(parser.parse_args()))
