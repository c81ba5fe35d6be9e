"""Benchmark: 500 live transferEvents subscribers on one API process (issue 9, row 3; not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_fanout REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python benchmarks/fanout.py --subscribers 500 --rounds 2

Seeds a synthetic tenant (users of about 250 records, as benchmarks/bulk_transfer.py),
starts one API process (`udt serve`), then per round runs a 1,000-pair bulk
transfer twice, on fresh users each time: watched by one subscriber and by
--subscribers (which goes first alternates by round). The subscribers are raw
WebSocket clients speaking graphql-transport-ws, spread over --clients
processes, each reading its sockets every 20 ms and only framing and keeping
what comes until its subscriptions complete, then reading every event (so that
the client is not what is measured, and costs the server little more than
clients on other machines would). Every subscriber has its SNAPSHOT before a worker process (one, per
run) starts, so each hears the whole transfer live.

Prints, per run, the transfer's own time (its startedAt -> finishedAt, set by
the worker), when the first and the last subscriber heard the terminal event
(after finishedAt) and the spread between them, and the CPU spent meanwhile
by the API, the clients, the worker and the rest of the machine (PostgreSQL,
Redis, the kernel's network); per round, the ratio of the two transfer times. Fails if any subscriber
missed, repeated or reordered an event: each must see the SNAPSHOT, then every
event numbered after it exactly once, in order, ending with the terminal one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# `udt serve` needs the key that signs download links; a benchmark's API makes links with this one.
os.environ.setdefault("UDT_SECRET_KEY", secrets.token_urlsafe(32))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import busy_seconds, cpu_seconds  # noqa: E402

TICK = 0.02  # seconds between a client's rounds of reading: a browser's frame is 16 ms
TERMINAL = {"SUCCEEDED", "PARTIALLY_FAILED", "FAILED", "CANCELLED"}
TERMINAL_EVENT = re.compile(rb'"type":"(?:SUCCEEDED|PARTIALLY_FAILED|FAILED|CANCELLED)"')
# What a front end's progress view selects (the README's example).
EVENTS = """
subscription ($id: ID!) {
  transferEvents(transferId: $id) {
    cursor type status processedPairs succeededPairs failedPairs
    sourceUserId targetUserId errorCode message at
  }
}"""
UPLOAD = "mutation ($f: Upload!) { uploadBulkTransferFile(file: $f) { upload { id pairCount errorCount } } }"
START_BULK = "mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) { transfer { id } userErrors { code } } }"


# --- the client: one process of many, each holding a share of the subscribers ------------


def _seq(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor).decode().split(":")[2])


class Subscriber:
    """One WebSocket speaking graphql-transport-ws over a plain socket, its handshake and frames
    done here: the websockets library's frame parser cost more CPU than the server's work.

    While the transfer runs it only frames what it receives, answers pings, notes when the
    terminal event came, and keeps the bytes; it reads every event when the subscription is
    complete (`check`). So it takes little CPU from the server it measures on this machine,
    as browsers elsewhere would take none. Its operation ID is a UUID, as graphql-ws clients send."""

    def __init__(self, host: str, port: int, token: str, transfer_id: str) -> None:
        self.sock = socket.create_connection((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode()
        )
        self.sock.setblocking(False)
        self.token, self.transfer_id, self.id = token, transfer_id, str(uuid.uuid4())
        self.next = f'{{"id":"{self.id}","type":"next"'.encode()
        self.buffer, self.upgraded, self.done = b"", False, False
        self.received: list[bytes] = []  # whole frames, as they came
        self.snapshot = False  # its SNAPSHOT came: the subscription is live
        self.heard_end: float | None = None
        self.first = self.last = None
        self.count, self.in_order = 0, True

    def send(self, payload: bytes, opcode: int = 1) -> None:
        """A client's frame: masked, as the protocol requires."""
        n, mask = len(payload), os.urandom(4)
        length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.sock.sendall(bytes([0x80 | opcode]) + length + mask + masked)  # a few bytes: the socket takes them at once

    def readable(self) -> None:
        data = self.sock.recv(1 << 16)  # not more: a larger buffer is mapped and unmapped by each call
        if not data:
            raise ConnectionError("the server closed the connection")
        buf = self.buffer + data
        if not self.upgraded:
            head, found, buf = buf.partition(b"\r\n\r\n")
            if not found:
                self.buffer = head
                return
            assert head.startswith(b"HTTP/1.1 101"), head
            self.upgraded = True
            self.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}).encode())
        i = _frames(buf, self._other, skip=self.next)
        if i:
            whole = buf[:i]
            self.received.append(whole)
            self.snapshot = self.snapshot or b'"type":"SNAPSHOT"' in whole
            if self.heard_end is None and TERMINAL_EVENT.search(whole):
                self.heard_end = time.time()
        self.buffer = buf[i:]

    def _other(self, opcode: int, payload: bytes) -> None:
        """Any frame but an event's."""
        if opcode == 9:
            self.send(payload, opcode=10)  # ping: pong
        elif opcode == 8:
            raise ConnectionError(f"closed by the server: {payload!r}")
        elif opcode == 1:
            message = json.loads(payload)
            if message["type"] == "connection_ack":
                subscribe = {"id": self.id, "type": "subscribe", "payload": {"query": EVENTS, "variables": {"id": self.transfer_id}}}
                self.send(json.dumps(subscribe).encode())
                return
            assert message["type"] == "complete", message
            self.done = True

    def check(self) -> None:
        """Reads every event received, once the subscription is complete."""
        ended = False

        def event(opcode: int, payload: bytes) -> None:
            nonlocal ended
            if opcode != 1 or not payload.startswith(self.next):
                return
            fields = json.loads(payload)["payload"]["data"]["transferEvents"]
            seq, kind = _seq(fields["cursor"]), fields["type"]
            if self.first is None:
                self.in_order, self.first = kind == "SNAPSHOT", seq
            else:
                self.in_order = self.in_order and seq == self.last + 1 and not ended  # the terminal event is last
                self.count += 1
            self.last, ended = seq, ended or kind in TERMINAL

        for whole in self.received:
            _frames(whole, event)
        self.in_order = self.in_order and ended

    def outcome(self) -> dict:
        return {"first": self.first, "last": self.last, "count": self.count, "in_order": self.in_order, "heard_end": self.heard_end}


def _frames(buf: bytes, handle: Callable[[int, bytes], None], skip: bytes | None = None) -> int:
    """Walks the server's frames in `buf` (unmasked, never fragmented), handing each to `handle`
    but text frames that start with `skip`; returns where the last whole frame ends."""
    i, end = 0, len(buf)
    while end - i >= 2:
        n, start = buf[i + 1] & 0x7F, i + 2
        if n == 126:
            n, start = int.from_bytes(buf[i + 2 : i + 4], "big"), i + 4
        elif n == 127:
            n, start = int.from_bytes(buf[i + 2 : i + 10], "big"), i + 10
        if end < start + n or end < start:
            break
        if skip is None or buf[i] != 0x81 or not buf.startswith(skip, start):
            handle(buf[i] & 0x0F, buf[start : start + n])
        i = start + n
    return i


def client(url: str, token: str, transfer_id: str, n: int) -> None:
    """Opens `n` subscriptions (25 at a time), says `ready` once each has its SNAPSHOT,
    then prints one JSON line with every subscription's outcome.

    It reads in rounds of TICK, as a process on another machine would cost the server
    nothing per message: a process here woken by each message would take the CPU from
    the server it measures (2 cores: each wake-up can preempt the sender)."""
    import selectors
    from urllib.parse import urlsplit

    where = urlsplit(url)
    selector = selectors.DefaultSelector()
    subscribers: list[Subscriber] = []
    ready, done = False, 0
    while True:
        while len(subscribers) < n and sum(not s.snapshot for s in subscribers) < 25:
            s = Subscriber(where.hostname, where.port, token, transfer_id)
            selector.register(s.sock, selectors.EVENT_READ, s)
            subscribers.append(s)
        for key, _ in selector.select(timeout=1):
            key.data.readable()
            if key.data.done:
                selector.unregister(key.fileobj)
                key.fileobj.close()
                done += 1
        if not ready and len(subscribers) == n and all(s.snapshot for s in subscribers):
            print("ready", flush=True)
            ready = True
        if done == n:
            break
        if ready:
            time.sleep(TICK)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime}), flush=True)  # while the transfer ran
    for s in subscribers:
        s.check()
    print(json.dumps({"subscribers": [s.outcome() for s in subscribers]}), flush=True)


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class Run:
    subscribers: int
    transfer: float  # startedAt -> finishedAt
    first_end: float  # finishedAt -> the first subscriber hears the terminal event
    last_end: float  # finishedAt -> the last one does
    events: int
    api_cpu: float
    client_cpu: float
    worker_cpu: float
    rest_cpu: float
    seconds: float

    @property
    def spread(self) -> float:
        return self.last_end - self.first_end

    def __str__(self) -> str:
        return (
            f"{self.subscribers:4d} subscriber(s): transfer {self.transfer:6.2f} s; terminal event heard "
            f"{self.first_end:+.2f} s (first) to {self.last_end:+.2f} s (last) after finishedAt, spread {self.spread:.2f} s; "
            f"{self.events} events each, all in order; CPU: API {self.api_cpu:.1f} s, clients {self.client_cpu:.1f} s, "
            f"worker {self.worker_cpu:.1f} s, PostgreSQL and the rest {self.rest_cpu:.1f} s, in {self.seconds:.1f} s on {os.cpu_count()} cores"
        )


async def _start_bulk(http, pairs: list[tuple[int, int]]) -> str:  # type: ignore[no-untyped-def]
    from gql import FileVar, GraphQLRequest

    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    file = FileVar(io.BytesIO(content.encode()), filename="pairs.csv", content_type="text/csv")
    upload = await http.execute(GraphQLRequest(UPLOAD, variable_values={"f": file}), upload_files=True)
    upload = upload["uploadBulkTransferFile"]["upload"]
    assert upload["errorCount"] == 0, upload
    started = await http.execute(GraphQLRequest(START_BULK, variable_values={"id": upload["id"]}))
    assert started["startBulkTransfer"]["userErrors"] == [], started
    return started["startBulkTransfer"]["transfer"]["id"]


async def _run(args: argparse.Namespace, http, api: subprocess.Popen, port: int, token: str,  # type: ignore[no-untyped-def]
               pairs: list[tuple[int, int]], subscribers: int, env: dict, logs: Path) -> Run:
    from graph.core.relay import pk_of
    from models.transfers import Transfer

    transfer_id = await _start_bulk(http, pairs)
    url = f"ws://127.0.0.1:{port}/graphql"
    processes = min(args.clients, subscribers)
    shares = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    clients = [
        await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", url, token, transfer_id, str(share),
            stdout=asyncio.subprocess.PIPE, cwd=ROOT, preexec_fn=lambda: os.nice(args.client_nice),
        )
        for share in shares
    ]
    subscribing = time.perf_counter()
    for c in clients:  # every subscriber has its SNAPSHOT: now the work may begin
        line = await c.stdout.readline()
        assert line.strip() == b"ready", f"a client failed before it was ready: {line!r}"
    print(f"{subscribers:4d} subscriber(s) have their SNAPSHOT after {time.perf_counter() - subscribing:.1f} s; starting the worker", flush=True)
    cpu_before, busy_before, began = cpu_seconds(api.pid), busy_seconds(), time.perf_counter()
    with (logs / f"worker-{transfer_id}.log").open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "graph.process.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        client_cpu = sum([json.loads(await c.stdout.readline())["cpu"] for c in clients])
        api_cpu = cpu_seconds(api.pid) - cpu_before
        busy, seconds = busy_seconds() - busy_before, time.perf_counter() - began
        reports = [json.loads(await c.stdout.readline()) for c in clients]  # once each has read its events
        for c in clients:
            await c.wait()
    finally:
        worker.terminate()
        _, _, usage = os.wait4(worker.pid, 0)
    worker_cpu = usage.ru_utime + usage.ru_stime

    transfer = await Transfer.get(id=pk_of(transfer_id, "Transfer"))
    assert transfer.status == "SUCCEEDED", transfer.status
    outcomes = [o for r in reports for o in r["subscribers"]]
    assert len(outcomes) == subscribers
    for o in outcomes:  # the SNAPSHOT, then every event after it exactly once, in order, the terminal one last
        assert o["in_order"] and o["last"] == transfer.last_event and o["count"] == transfer.last_event - o["first"], o
    finished = transfer.finished_at.timestamp()
    ends = sorted(o["heard_end"] for o in outcomes)
    return Run(
        subscribers, (transfer.finished_at - transfer.started_at).total_seconds(), ends[0] - finished, ends[-1] - finished,
        outcomes[0]["count"], api_cpu, client_cpu, worker_cpu, busy - api_cpu - client_cpu - worker_cpu, seconds,
    )


async def main(args: argparse.Namespace) -> None:
    import httpx
    from gql import Client
    from gql.transport.httpx import HTTPXAsyncTransport

    from graph.process.cli import apply_migrations
    from models import seed
    from models.db import close_db, open_db
    from models.tenancy import ApiToken, User
    from tests.support import free_port

    slug = f"bench-fanout-{int(time.time())}"
    users = 2 * args.pairs * 2 * args.rounds
    await apply_migrations()
    await open_db()
    started = time.perf_counter()
    await seed.seed_synthetic(slug, users, args.records_per_user)
    print(f"seed: {users} users x ~{args.records_per_user} records in {time.perf_counter() - started:.1f} s")
    token = await ApiToken.issue(await User.get(tenant__slug=slug, username="admin"))
    ids = sorted(await User.filter(tenant__slug=slug, tenant_admin=False).values_list("user_id", flat=True))
    batches = [[(ids[i], ids[i + 1]) for i in range(start, start + 2 * args.pairs, 2)] for start in range(0, users, 2 * args.pairs)]

    env = {**os.environ, "UDT_LOG_LEVEL": "WARNING", "UDT_QUEUE_NAME": f"udt:bench-fanout:{os.getpid()}", "UDT_METRICS": "off"}
    logs = Path(tempfile.mkdtemp(prefix="udt-bench-fanout-"))
    port = free_port()
    with (logs / "api.log").open("wb") as log:
        api = subprocess.Popen([sys.executable, "-m", "graph.process.cli", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log)
    print(f"API pid {api.pid} on port {port}, logs in {logs}; {args.pairs} pairs a transfer, {args.clients} client processes at nice {args.client_nice}")
    runs: list[tuple[Run, Run]] = []
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(300):
                try:
                    if (await probe.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        transport = HTTPXAsyncTransport(url=f"http://127.0.0.1:{port}/graphql", headers={"Authorization": f"Bearer {token}"}, timeout=120)
        async with Client(transport=transport, execute_timeout=120) as http:
            for r in range(args.rounds):  # which goes first alternates, so that neither always has a fresher machine
                measured = {}
                for i, n in enumerate((1, args.subscribers) if r % 2 == 0 else (args.subscribers, 1)):
                    measured[n] = await _run(args, http, api, port, token, batches[2 * r + i], n, env, logs)
                    print(measured[n], flush=True)
                runs.append((measured[1], measured[args.subscribers]))
    finally:
        api.terminate()
        api.wait()
        await close_db()

    print(f"\n{'round':>5}  {'1 sub':>7}  {f'{args.subscribers} subs':>8}  {'ratio':>5}  {'spread':>6}")
    for r, (one, many) in enumerate(runs, 1):
        print(f"{r:5d}  {one.transfer:6.2f}s  {many.transfer:7.2f}s  {many.transfer / one.transfer:4.2f}x  {many.spread:5.2f}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4, help="client processes sharing the subscribers")
    parser.add_argument("--rounds", type=int, default=1, help="each: a transfer with 1 subscriber, then one with --subscribers")
    parser.add_argument("--records-per-user", type=int, default=250, help="as in the bulk transfer benchmark")
    parser.add_argument(
        "--client-nice", type=int, default=19,
        help="the client processes' niceness: they stand for browsers on other machines, so by default they "
        "take only the CPU that the API, the worker and PostgreSQL leave",
    )
    parser.add_argument("--client", nargs=4, metavar=("URL", "TOKEN", "TRANSFER_ID", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, token, transfer_id, n = args.client
        client(url, token, transfer_id, int(n))
    else:
        asyncio.run(main(args))
