"""Benchmark: interactive traffic stays fast while a bulk runs (issue 17; not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_interactive REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python benchmarks/interactive.py --seconds 120 --rate 30

Seeds (or reuses) a tenant of 8,000 users with 240 records each
(`big_tenant.py`), starts `udt serve` and `udt worker` (one each; the worker
at its own niceness, `UDT_WORKER_NICE`, unless `--worker-nice` says otherwise),
then lowers itself to nice 19 (`--client-nice`)
and, at each rate of `--rate` (a comma list steps it up), runs each phase of
`--phases` in turn:

- quiet, for `--baseline-seconds`: the interactive mix alone, `--clients`
  clients asking users pages, searches, plans (transferPlan), history
  (transfers) and progress (transfer(id:)) at `--rate` requests/s in all,
  arrivals at random (exponential gaps): the baseline, read against the
  machine's state in the same run;
- bulk, for `--seconds`: the same mix while 2,000-pair bulks run one after
  another (each back the way the last went), each watched by `--watchers`
  subscribers (benchmarks/fanout.py's clients, one process);
- full: as bulk, and a 2,000-row CSV uploaded every `--upload-every` seconds.

Prints per phase p50/p95/p99/max per request kind and overall, errors, the
achieved rate, how late the clients' own loop woke (a latency includes it),
the CPU of the API, the worker, the clients, the watchers and the rest of the
machine (PostgreSQL, Redis, other engineers' processes), the load average,
the API's database connections (busy, waiting on what; sampled), and the
API's RSS at each minute. A request is an error if it is not a 200 with data and no `errors`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from big_tenant import FIRST, LAST, asyncpg_url, big_tenant, free_port, start, stop, token_for
from machine import busy_seconds, cpu_seconds, load, rss_bytes, waited_seconds
from users_page import QUERY as USERS_PAGE

ROOT = Path(__file__).resolve().parent.parent
BULK_PAIRS = 2000  # the largest bulk: users 2..4001 in pairs
UPLOAD_FROM = 2 + 2 * BULK_PAIRS  # uploads and plans name users 4002..8001, outside the bulk
USERS = 8000
SEARCH = """query ($s: String) { users(filter: {search: $s, active: null}, first: 20) {
  totalCount edges { node { id userId displayName email } } } }"""
PLAN = """query ($s: Int!, $t: Int!) { transferPlan(sourceUserId: $s, targetUserId: $t) {
  sourceUser { userId displayName } targetUser { userId displayName }
  impact { dataType { key } moves deletes } errors { code message } } }"""
HISTORY = """query { transfers(first: 20) { edges { node {
  id kind status createdAt finishedAt totalPairs processedPairs failedPairs requestedBy { displayName } } } } }"""
PROGRESS = """query ($id: ID!) { transfer(id: $id) {
  id status totalPairs processedPairs succeededPairs failedPairs startedAt finishedAt } }"""
UPLOAD = "mutation ($f: Upload!) { uploadBulkTransferFile(file: $f) { upload { id pairCount errorCount } } }"
START_BULK = """mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) {
  transfer { id } userErrors { code message } } }"""
START_SINGLE = """mutation ($s: Int!, $t: Int!) { startTransfer(input: {sourceUserId: $s, targetUserId: $t, confirm: true}) {
  transfer { id } userErrors { code message } } }"""
KINDS = {"users": 0.3, "search": 0.2, "plan": 0.2, "history": 0.15, "progress": 0.15}  # the mix, by share
FINISHED = {"SUCCEEDED", "PARTIALLY_FAILED", "FAILED", "CANCELLED"}


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    uploads: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each upload
    slow: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of requests over a second
    lag: list[float] = field(default_factory=list)  # the clients' own event loop's lateness, sampled
    bulks: list[str] = field(default_factory=list)  # the bulks' outcomes
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds in, API RSS)
    cpu: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0  # the whole machine's CPU time
    waited: dict[str, float] = field(default_factory=dict)  # runnable, waiting for a CPU
    connections: list[tuple[int, int]] = field(default_factory=list)  # the API's (open, busy), sampled
    waits: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # its busy connections' states
    watchers_cpu: float = 0.0  # the watchers' over their bulks' whole time
    seconds: float = 0.0
    load: str = ""


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    ranked = sorted(values)
    return ranked[max(0, -(-len(ranked) * p // 100) - 1)] if ranked else float("nan")


def report(phase: Phase, rate: float) -> None:
    every = [x for values in phase.latencies.values() for x in values]
    errors = sum(len(e) for e in phase.errors.values())
    print(f"\n{phase.name}: {len(every) / phase.seconds:.1f} requests/s achieved of {rate:g} asked, "
          f"{errors} errors, in {phase.seconds:.0f} s; load average at its end {phase.load}")
    print(f"  {'kind':<9} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  errors")
    for kind in [*KINDS, "overall"]:
        values = every if kind == "overall" else phase.latencies[kind]
        wrong = errors if kind == "overall" else len(phase.errors[kind])
        if values:
            cells = " ".join(f"{percentile(values, p) * 1000:5.0f}ms" for p in (50, 95, 99, 100))
            print(f"  {kind:<9} {len(values):5d} {cells}  {wrong}")
    for kind, messages in [(k, m) for k, m in phase.errors.items() if m]:
        print(f"  {kind} errors, first: {messages[0]}")
    print(f"  the clients' own loop was late by p50 {percentile(phase.lag, 50) * 1000:.0f} ms, p99 "
          f"{percentile(phase.lag, 99) * 1000:.0f} ms, max {max(phase.lag) * 1000:.0f} ms (at low priority: what the machine left them)")
    if phase.uploads:
        took = [end - start for start, end in phase.uploads]
        during = sum(any(s < e_up and s_up < e for s_up, e_up in phase.uploads) for s, e in phase.slow)
        print(f"  uploads of {BULK_PAIRS} rows: {len(took)}, median {percentile(took, 50):.2f} s, max {max(took):.2f} s; "
              f"{during} of the {len(phase.slow)} requests over 1 s overlapped one")
    for outcome in phase.bulks:
        print(f"  bulk: {outcome}")
    cpu = {**phase.cpu, "watchers": phase.watchers_cpu} if phase.watchers_cpu else dict(phase.cpu)
    cpu["rest of the machine"] = phase.busy - sum(cpu.values())
    print("  CPU: " + ", ".join(f"{name} {seconds:.1f} s ({100 * seconds / phase.seconds:.0f} % of a core)"
                                 for name, seconds in cpu.items()) + f", on {os.cpu_count()} cores")
    print("  waited for a CPU while runnable: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phase.waited.items())
          + f" of the {phase.seconds:.0f} s")
    if phase.connections:
        opened, busy = zip(*phase.connections)
        samples = len(phase.connections)
        print(f"  API's database connections (pg_stat_activity every 100 ms): open {max(opened)} at most, busy "
              f"{sum(busy) / samples:.1f} on average, {max(busy)} at most, all {max(opened)} busy in "
              f"{sum(b == o for o, b in phase.connections if o) / samples:.0%} of samples")
        top = sorted(phase.waits.items(), key=lambda kv: -kv[1])[:5]
        print("  busy connections were: " + ", ".join(f"{what} {n / samples:.2f}" for what, n in top) + " (on average)")
    if phase.rss:
        print("  API RSS: " + ", ".join(f"{mib / 2**20:.0f} MiB at {at:.0f} s" for at, mib in phase.rss))


class Service:
    """The API and the worker under test, and GraphQL over HTTP to the API as the tenant's admin."""

    def __init__(self, http, port: int, token: str, api: subprocess.Popen, worker: subprocess.Popen) -> None:  # type: ignore[no-untyped-def]
        self.http, self.port, self.api, self.worker = http, port, api, worker
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.token, self.headers = token, {"Authorization": f"Bearer {token}"}

    async def ask(self, query: str, **variables: object) -> dict:
        """The answer's data; raises on anything but a 200 with data and no errors."""
        response = await self.http.post(self.url, json={"query": query, "variables": variables}, headers=self.headers)
        return self._data(response)

    async def upload(self, pairs: list[tuple[int, int]]) -> dict:
        """A Source/Target CSV by the GraphQL multipart request specification."""
        content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
        response = await self.http.post(
            self.url, headers=self.headers,
            data={"operations": json.dumps({"query": UPLOAD, "variables": {"f": None}}), "map": '{"0": ["variables.f"]}'},
            files={"0": ("pairs.csv", content.encode(), "text/csv")},
        )
        return self._data(response)["uploadBulkTransferFile"]["upload"]

    @staticmethod
    def _data(response) -> dict:  # type: ignore[no-untyped-def]
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        if body.get("errors") or not body.get("data"):
            raise RuntimeError(f"errors: {json.dumps(body.get('errors'))[:200]}")
        return body["data"]


class Mix:
    """The interactive requests: which kind, with what variables."""

    def __init__(self, service: Service, rng: random.Random) -> None:
        self.service, self.rng = service, rng
        self.progress_of: list[str] = []  # transfers to ask about: the running bulk, else recent ones

    async def one(self, kind: str) -> None:
        rng, ask = self.rng, self.service.ask
        if kind == "users":
            await ask(USERS_PAGE, first=50)
        elif kind == "search":
            words = rng.choice([rng.choice(FIRST), f"{rng.choice(FIRST)} {rng.choice(LAST)}", str(rng.randint(2, USERS + 1))])
            await ask(SEARCH, s=words)
        elif kind == "plan":
            source = rng.randint(UPLOAD_FROM, USERS)
            await ask(PLAN, s=source, t=source + 1)
        elif kind == "history":
            await ask(HISTORY)
        else:
            await ask(PROGRESS, id=rng.choice(self.progress_of[-1:] or ["none"]))


async def interactive(mix: Mix, phase: Phase, clients: int, rate: float, seconds: float) -> None:
    """`clients` clients, each asking at random times (exponential gaps) so that all ask `rate` a second."""
    kinds, weights = list(KINDS), list(KINDS.values())
    deadline = time.perf_counter() + seconds

    async def client(rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, clients / rate))
        while time.perf_counter() < deadline:
            due = time.perf_counter() + rng.expovariate(rate / clients)
            kind = rng.choices(kinds, weights)[0]
            started = time.perf_counter()
            try:
                await mix.one(kind)
                ended = time.perf_counter()
                phase.latencies[kind].append(ended - started)
                if ended - started > 1:
                    phase.slow.append((started, ended))
            except Exception as exc:  # noqa: BLE001 - counted and shown: an error is a result here
                phase.errors[kind].append(f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(max(0.0, min(due, deadline) - time.perf_counter()))

    await asyncio.gather(*(client(random.Random(mix.rng.random())) for _ in range(clients)))


class BulkPairs:
    """The bulks' 2,000 pairs of users 2..4001, each from whichever of its users owns records:
    asked of the database before the phases (a probe per user is slow right after a bulk,
    through the index entries it left dead), then turned around after each bulk that succeeded."""

    def __init__(self, pks: dict[int, int]) -> None:
        self.pks, self.pairs = pks, []

    async def find(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(asyncpg_url())
        try:
            rows = await conn.fetch(
                "SELECT u FROM unnest($1::int[]) u WHERE EXISTS (SELECT 1 FROM owned_record WHERE owner_id = u)",
                list(self.pks.values()),
            )
        finally:
            await conn.close()
        by_pk = {pk: uid for uid, pk in self.pks.items()}
        owning = {by_pk[r["u"]] for r in rows}
        self.pairs = [(a, b) if a in owning else (b, a) for a, b in zip(range(2, UPLOAD_FROM, 2), range(3, UPLOAD_FROM, 2))]

    def turn(self) -> None:
        self.pairs = [(b, a) for a, b in self.pairs]


async def user_pks(slug: str) -> dict[int, int]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_url())
    try:
        rows = await conn.fetch(
            "SELECT u.user_id, u.id FROM app_user u JOIN tenant t ON t.id = u.tenant_id"
            " WHERE t.slug = $1 AND u.user_id BETWEEN 2 AND $2", slug, UPLOAD_FROM - 1,
        )
    finally:
        await conn.close()
    return {r["user_id"]: r["id"] for r in rows}


async def bulks(service: Service, mix: Mix, phase: Phase, pairs: BulkPairs, watchers: int, until: float) -> None:
    """2,000-pair bulks one after another until `until`, each watched by `watchers` subscribers."""
    while time.perf_counter() < until:
        upload = await service.upload(pairs.pairs)
        assert upload["errorCount"] == 0, upload
        started = (await service.ask(START_BULK, id=upload["id"]))["startBulkTransfer"]
        assert not started["userErrors"], started
        transfer_id = started["transfer"]["id"]
        mix.progress_of.append(transfer_id)
        t0 = time.perf_counter()
        outcome = await watch(service, transfer_id, watchers, phase) if watchers else await poll(service, transfer_id)
        state = (await service.ask(PROGRESS, id=transfer_id))["transfer"]
        phase.bulks.append(f"{state['status']} {state['processedPairs']}/{state['totalPairs']} pairs "
                           f"in {time.perf_counter() - t0:.1f} s; {outcome}")
        if state["status"] == "SUCCEEDED":
            pairs.turn()
        else:
            await pairs.find()


async def poll(service: Service, transfer_id: str) -> str:
    while (await service.ask(PROGRESS, id=transfer_id))["transfer"]["status"] not in FINISHED:
        await asyncio.sleep(1)
    return "no watchers"


async def watch(service: Service, transfer_id: str, n: int, phase: Phase) -> str:
    """`n` graphql-transport-ws subscribers of the bulk (benchmarks/fanout.py's client), until its end."""
    url = f"ws://127.0.0.1:{service.port}/graphql"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "benchmarks" / "fanout.py"), "--client", url, service.token, transfer_id, str(n),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    lines = [line async for line in process.stdout]
    await process.wait()
    phase.watchers_cpu += json.loads(lines[-2])["cpu"]
    outcomes = json.loads(lines[-1])["subscribers"]
    whole = sum(o["in_order"] for o in outcomes)
    return f"{n} watchers, {whole} heard every event in order"


async def uploads(service: Service, phase: Phase, every: float, until: float, rng: random.Random) -> None:
    """A 2,000-row upload of users outside the running bulk every `every` seconds (validated, never started)."""
    ids = list(range(UPLOAD_FROM, UPLOAD_FROM + 2 * BULK_PAIRS))
    while time.perf_counter() + every < until:
        due = time.perf_counter() + every
        rng.shuffle(ids)
        started = time.perf_counter()
        try:
            await service.upload(list(zip(ids[::2], ids[1::2])))
            phase.uploads.append((started, time.perf_counter()))
        except Exception as exc:  # noqa: BLE001 - counted and shown
            phase.errors["upload"].append(f"{type(exc).__name__}: {exc}"[:300])
        await asyncio.sleep(max(0.0, due - time.perf_counter()))


async def memory(service: Service, phase: Phase, began: float, until: float) -> None:
    """The API's RSS at every minute of the phase (and at its end)."""
    while (at := time.perf_counter()) < until:
        await asyncio.sleep(min(60 - (at - began) % 60, until - at))
        phase.rss.append((time.perf_counter() - began, rss_bytes(service.api.pid)))


async def lateness(phase: Phase, until: float) -> None:
    """How late this process's own loop wakes up: a request's latency includes it."""
    while time.perf_counter() < until:
        due = time.perf_counter() + 0.05
        await asyncio.sleep(0.05)
        phase.lag.append(time.perf_counter() - due)


async def database(phase: Phase, until: float) -> None:
    """Samples pg_stat_activity every 100 ms: how many of the API's connections are open and
    busy (the pool's use), and what its busy ones wait for (the database's share of the tail)."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_url())
    try:
        while time.perf_counter() < until:
            rows = await conn.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
                " WHERE application_name = 'udt-api' AND datname = current_database()"
            )
            busy = [r for r in rows if r["state"] != "idle"]
            phase.connections.append((len(rows), len(busy)))
            for r in busy:
                phase.waits[f"{r['state']}: {r['wait_event_type'] or 'CPU'}:{r['wait_event'] or '-'}"] += 1
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


PHASES = {  # what runs beside the interactive mix: (the bulks and their watchers, the uploads)
    "quiet": (False, False),
    "bulk": (True, False),
    "full": (True, True),
}


async def run_phase(service: Service, mix: Mix, kind: str, args: argparse.Namespace, rate: float, pairs: BulkPairs) -> Phase:
    loaded, uploading = PHASES[kind]
    name = {"quiet": "the baseline: no bulk, no uploads", "bulk": "while bulks run, no uploads",
            "full": f"while bulks run, an upload every {args.upload_every:g} s"}[kind]
    phase = Phase(f"{rate:g}/s {name}")
    seconds = args.seconds if loaded else args.baseline_seconds
    api, worker = cpu_seconds(service.api.pid), cpu_seconds(service.worker.pid)
    waits = {"the API's loop": waited_seconds(service.api.pid), "the clients' loop": waited_seconds(os.getpid())}
    mine, busy, began = resource.getrusage(resource.RUSAGE_SELF), busy_seconds(), time.perf_counter()
    until = began + seconds
    tasks = [interactive(mix, phase, args.clients, rate, seconds), memory(service, phase, began, until), database(phase, until),
             lateness(phase, until)]
    if loaded:
        tasks.append(bulks(service, mix, phase, pairs, args.watchers, until))
        if uploading:
            tasks.append(uploads(service, phase, args.upload_every, until, mix.rng))
    measured, background = asyncio.gather(*tasks[:4]), asyncio.gather(*tasks[4:])
    await measured
    phase.seconds, phase.load = time.perf_counter() - began, load()
    after = resource.getrusage(resource.RUSAGE_SELF)
    phase.cpu = {
        "API": cpu_seconds(service.api.pid) - api,
        "worker": cpu_seconds(service.worker.pid) - worker,
        "clients": after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime,
    }
    phase.busy = busy_seconds() - busy
    phase.waited = {
        "the API's loop": waited_seconds(service.api.pid) - waits["the API's loop"],
        "the clients' loop": waited_seconds(os.getpid()) - waits["the clients' loop"],
    }
    if loaded:
        print(f"  ({name}: measured; waiting for the last bulk to end)", flush=True)
    await background  # the last bulk runs to its end, so that the next one can go back; not measured
    return phase


async def main(args: argparse.Namespace) -> None:
    import httpx

    slug = await big_tenant(USERS, 8)
    token = await token_for(slug, "admin")
    pairs = BulkPairs(await user_pks(slug))
    await pairs.find()
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="udt-bench-interactive-"))
    env = {**os.environ, "UDT_QUEUE_NAME": f"udt:bench-interactive:{os.getpid()}", "UDT_METRICS": "off",
           **({} if args.worker_nice is None else {"UDT_WORKER_NICE": str(args.worker_nice)}),
           **dict(kv.split("=", 1) for kv in args.env)}
    with (logs / "worker.log").open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "graph.process.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)
    api = start([sys.executable, "-m", "graph.process.cli", "serve", "--port", str(port)], port, env=env, log=logs / "api.log")
    os.nice(args.client_nice)  # the clients and the watchers (started from here) take what the service leaves
    print(f"API pid {api.pid} on port {port}, worker pid {worker.pid} at nice {os.getpriority(os.PRIO_PROCESS, worker.pid)}, logs in {logs}; clients at nice {os.nice(0)}; "
          f"{args.clients} clients, {args.watchers} watchers, an upload every {args.upload_every:g} s; "
          f"load average {load()} on {os.cpu_count()} cores (the machine is shared)", flush=True)
    try:
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends: a request sent on one
        # the server is closing would fail (a browser retries it; httpx does not).
        limits = httpx.Limits(max_connections=args.clients + 2, keepalive_expiry=2)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30)) as http:
            service = Service(http, port, token, api, worker)
            mix = Mix(service, random.Random(args.seed))
            history = (await service.ask(HISTORY))["transfers"]["edges"]
            if not history:  # progress needs a transfer to ask about before the first bulk
                started = (await service.ask(START_SINGLE, s=USERS, t=USERS + 1))["startTransfer"]
                assert not started["userErrors"], started
                await poll(service, started["transfer"]["id"])
                history = (await service.ask(HISTORY))["transfers"]["edges"]
            mix.progress_of.append(history[0]["node"]["id"])
            for kind in KINDS:  # warm up: imports, statements prepared, the pool's connections
                await mix.one(kind)
            for rate in args.rate:
                for kind in args.phases:
                    report(await run_phase(service, mix, kind, args, rate, pairs), rate)
    finally:
        stop(api)
        worker.terminate()
        worker.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="of the measured mix while bulks run")
    parser.add_argument("--baseline-seconds", type=float, default=60, help="of the mix alone")
    parser.add_argument("--phases", type=lambda s: s.split(","), default=["quiet", "full"],
                        help="in order, at each rate: quiet (the mix alone), bulk (bulks and their watchers beside it), "
                        "full (bulks, watchers and uploads beside it)")
    parser.add_argument("--rate", type=lambda s: [float(x) for x in s.split(",")], default=[30.0],
                        help="interactive requests/s in all; a comma list runs each in turn (e.g. 30,45,60)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--watchers", type=int, default=20, help="subscribers of each bulk")
    parser.add_argument("--upload-every", type=float, default=5, help="seconds between 2,000-row uploads (phase full)")
    parser.add_argument("--client-nice", type=int, default=19, help="added to this process's niceness once the service runs: "
                        "the clients stand for browsers elsewhere, taking only what the service leaves")
    parser.add_argument("--worker-nice", type=int, default=None,
                        help="the worker's niceness, as UDT_WORKER_NICE (default: the service's own, 10; the API's is the machine's default)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the API and the worker (e.g. UDT_LOG_LEVEL=INFO)")
    asyncio.run(main(parser.parse_args()))
