"""Benchmark: a bulk transfer's time with a webhook receiver that never answers, beside none (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/webhooks.py --pairs 1000 --rounds 3

Issue 22: "a receiver that never answers while a bulk runs (the bulk's time unchanged
within noise)". Seeds a synthetic tenant, starts the API (`udt serve`) and `udt worker`
processes, and a receiver at nice 19 that accepts connections and never answers.
Then rounds, alternating: a bulk of --pairs pairs with no endpoint, and one with
--endpoints endpoints at the dead receiver, every event subscribed, while a client
at nice 19 asks for a `webhook.test` to each of them every --test-every seconds
(so attempts that hang for the 10 s timeout run beside the bulk all along, and the
bulks' own endings add theirs). Prints each bulk's time (createdAt to finishedAt),
the medians of both kinds, and the webhook attempts that hung meanwhile.
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
from datetime import datetime
from pathlib import Path

os.environ.setdefault("UDT_SECRET_KEY", secrets.token_urlsafe(32))
os.environ["UDT_WEBHOOK_ALLOW_PRIVATE"] = "1"  # the dead receiver is on this machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UPLOAD = "mutation ($f: Upload!) { uploadBulkTransferFile(file: $f) { upload { id errorCount } } }"
START_BULK = """
mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) { transfer { id } userErrors { code message } } }"""
STATUS = "query ($id: ID!) { transfer(id: $id) { status createdAt finishedAt totalPairs succeededPairs } }"
CREATE = """
mutation ($url: String!) { createWebhookEndpoint(input: {url: $url, events: ["transfer.succeeded",
  "transfer.partially_failed", "transfer.failed", "transfer.cancelled"]}) { endpoint { id } userErrors { code message } } }"""
DELETE = "mutation ($id: ID!) { deleteWebhookEndpoint(input: {id: $id}) { deletedId } }"
SEND_TEST = "mutation ($id: ID!) { sendTestWebhook(input: {id: $id}) { delivery { id } userErrors { code } } }"
FINISHED = {"SUCCEEDED", "PARTIALLY_FAILED", "FAILED", "CANCELLED"}

# The receiver: a process at nice 19 that accepts every connection, reads, and never answers.
DEAD_RECEIVER = """
import asyncio, os, sys
os.nice(19)
async def hold(reader, writer):
    while await reader.read(65536):
        pass
async def main():
    server = await asyncio.start_server(hold, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""
# The client asking for test webhooks, at nice 19, standing for an operator elsewhere.
TESTS_CLIENT = """
import os, sys, time, httpx
os.nice(19)
url, token, every, ids = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
query = %r
with httpx.Client(headers={"Authorization": "Bearer " + token}, timeout=30) as client:
    while True:
        for id_ in ids:
            client.post(url, json={"query": query, "variables": {"id": id_}})
        time.sleep(every)
""" % SEND_TEST


class Session:
    def __init__(self, url: str, token: str) -> None:
        import httpx

        self.url, self.client = url, httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)

    async def __call__(self, query: str, files: dict | None = None, **variables):  # type: ignore[no-untyped-def]
        import json

        if files is None:
            response = await self.client.post(self.url, json={"query": query, "variables": variables})
        else:
            operations = json.dumps({"query": query, "variables": {"f": None}})
            response = await self.client.post(
                self.url, data={"operations": operations, "map": '{"0": ["variables.f"]}'}, files=files
            )
        body = response.json()
        if body.get("errors"):
            raise SystemExit(f"GraphQL errors: {body['errors']}")
        return body["data"]


async def _bulk(session: Session, pairs: list[tuple[int, int]]) -> float:
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    upload = (await session(UPLOAD, files={"0": ("pairs.csv", io.BytesIO(content.encode()), "text/csv")}))
    upload = upload["uploadBulkTransferFile"]["upload"]
    assert upload["errorCount"] == 0, upload
    started = (await session(START_BULK, id=upload["id"]))["startBulkTransfer"]
    if started["userErrors"]:
        raise SystemExit(f"startBulkTransfer refused: {started['userErrors']}")
    while True:
        found = (await session(STATUS, id=started["transfer"]["id"]))["transfer"]
        if found["status"] in FINISHED:
            break
        await asyncio.sleep(0.2)
    if found["succeededPairs"] != len(pairs):
        raise SystemExit(f"bulk ended {found['status']}")
    return (datetime.fromisoformat(found["finishedAt"]) - datetime.fromisoformat(found["createdAt"])).total_seconds()


async def main(args: argparse.Namespace) -> None:
    from graph.process.cli import apply_migrations
    from models import seed
    from models.db import close_db, open_db
    from models.tenancy import ApiToken, User
    from models.webhooks import DeliveryStatus, WebhookDelivery
    from tests.support import free_port

    slug = f"bench-hooks-{int(time.time())}"
    users = 2 * (args.pairs * 2 * args.rounds + 20)  # every round new pairs, and the warm-up's
    await apply_migrations()
    await open_db()
    await seed.seed_synthetic(slug, users, args.records_per_user)
    admin = await User.get(tenant__slug=slug, username="admin")
    ids = sorted(await User.filter(tenant__slug=slug, tenant_admin=False).values_list("user_id", flat=True))
    token = await ApiToken.issue(admin)
    print(f"seeded {slug}: {users} users x ~{args.records_per_user} records")

    queue = f"udt:bench-webhooks:{os.getpid()}"
    env = {**os.environ, "UDT_QUEUE_NAME": queue, "UDT_LOG_LEVEL": "WARNING", "UDT_METRICS": "off"}
    logs = Path(tempfile.mkdtemp(prefix="udt-bench-webhooks-"))
    port, dead_port = free_port(), free_port()
    processes = [subprocess.Popen([sys.executable, "-c", DEAD_RECEIVER, str(dead_port)])]
    for i in range(args.workers):
        with (logs / f"worker-{i}.log").open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "graph.process.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log))
    with (logs / "api.log").open("wb") as log:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "graph.process.cli", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        ))
    url = f"http://127.0.0.1:{port}/graphql"
    session = Session(url, token)
    times: dict[str, list[float]] = {"none": [], "dead": []}
    hung: list[int] = []
    try:
        for _ in range(100):
            try:
                await session("{ viewer { canTransfer } }")
                break
            except Exception:  # noqa: BLE001 - still starting
                await asyncio.sleep(0.2)
        pairs = [(ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2)]
        await _bulk(session, pairs[:20])  # warm-up
        pairs = pairs[20:]
        for round_ in range(args.rounds):
            for kind in ("none", "dead"):
                chunk, pairs = pairs[: args.pairs], pairs[args.pairs:]
                endpoints, client = [], None
                if kind == "dead":
                    for _ in range(args.endpoints):
                        made = (await session(CREATE, url=f"http://127.0.0.1:{dead_port}/hooks"))["createWebhookEndpoint"]
                        endpoints.append(made["endpoint"]["id"])
                    client = subprocess.Popen([sys.executable, "-c", TESTS_CLIENT, url, token, str(args.test_every), *endpoints])
                before = await WebhookDelivery.filter(endpoint__tenant__slug=slug).count()
                seconds = await _bulk(session, chunk)
                if client is not None:
                    client.terminate()
                    client.wait()
                made = await WebhookDelivery.filter(endpoint__tenant__slug=slug).count() - before
                for endpoint in endpoints:
                    await session(DELETE, id=endpoint)
                times[kind].append(seconds)
                if kind == "dead":
                    hung.append(made)
                print(f"round {round_ + 1}, {'no endpoint' if kind == 'none' else f'{args.endpoints} dead endpoints'}: "
                      f"{len(chunk)} pairs in {seconds:.2f} s" + (f", {made} deliveries made meanwhile" if kind == "dead" else ""))
        pending = await WebhookDelivery.filter(status=DeliveryStatus.PENDING).count()
    finally:
        await session.client.aclose()
        for process in processes:
            process.terminate()
            process.wait()
        await close_db()
    none, dead = statistics.median(times["none"]), statistics.median(times["dead"])
    print(f"\nmedian bulk time: no endpoint {none:.2f} s, dead receiver {dead:.2f} s ({dead / none:.2f}x); "
          f"every time: none {' '.join(f'{t:.2f}' for t in times['none'])}, dead {' '.join(f'{t:.2f}' for t in times['dead'])}")
    print(f"deliveries made while the bulks ran: {' '.join(map(str, hung))}; still pending at the end: {pending}; logs in {logs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records-per-user", type=int, default=50)
    parser.add_argument("--endpoints", type=int, default=5, help="at the dead receiver, in the rounds with one")
    parser.add_argument("--test-every", type=float, default=1.0, help="seconds between webhook.test requests to each")
    asyncio.run(main(parser.parse_args()))
