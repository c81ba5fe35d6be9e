"""Benchmark: every hostile request is answered fast, and /readyz keeps answering (not a test).

    .venv/bin/python benchmarks/hostile_requests.py                 # starts its own `udt dev`
    .venv/bin/python benchmarks/hostile_requests.py --url http://127.0.0.1:8011 --token udt_...

Sends each hostile document or body of issue 6 to a running service, several
times, and prints per request the status, the code of the answer, the median
time to answer and the server process's CPU time per request, beside a baseline
`{ __typename }` measured in the same run. Meanwhile a second client polls
/readyz; its latency while the hostile requests run is printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

import machine

ROOT = Path(__file__).resolve().parent.parent
UPLOAD = "mutation ($file: Upload!) { uploadBulkTransferFile(file: $file) { upload { id } userErrors { code } } }"
SEARCH = "query ($s: String) { users(filter: {search: $s}) { totalCount } }"
JSON = {"Content-Type": "application/json"}


def fragments(levels: int) -> str:
    spreads = "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}\n" for i in range(levels))
    return "query { ...F0 }\n" + spreads + f"fragment F{levels} on Query {{ __typename }}"


def hostile(token: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, httpx.post keyword arguments) of every hostile request."""
    auth = {"Authorization": f"Bearer {token}"}
    page = "users(first: 100) { edges { node { id userId displayName teams { name } data { count } } } }"
    multipart_ops = json.dumps({"query": UPLOAD, "variables": {"file": None}})
    return [
        ("nested fragments, 10 levels", {"json": {"query": fragments(10)}}),
        ("nested fragments, 20 levels", {"json": {"query": fragments(20)}}),
        ("nested fragments, 40 levels", {"json": {"query": fragments(40)}}),
        ("1,000 x __typename (tokens)", {"json": {"query": "{" + " __typename" * 1000 + "}"}}),
        ("240 x viewer { canTransfer }", {"json": {"query": "{" + " viewer { canTransfer }" * 240 + "}"}, "headers": auth}),
        ("5,000 nested brackets", {"json": {"query": "{ __typename(x: " + "[" * 5000 + "]" * 5000 + ") }"}}),
        ("25 aliased pages of 100 users (cost)", {"json": {"query": "{" + " ".join(f"u{i}: {page}" for i in range(25)) + "}"}, "headers": auth}),
        ("body is a JSON string", {"content": b'"query"', "headers": JSON}),
        ("body is null", {"content": b"null", "headers": JSON}),
        ("body is a number", {"content": b"42", "headers": JSON}),
        ("body is not UTF-8", {"content": b'{"query": "{ __typename }\xff"}', "headers": JSON}),
        ("body of 2 MB", {"content": json.dumps({"query": "{ __typename }", "x": "a" * 2_000_000}).encode(), "headers": JSON}),
        (
            "variables nested 100,000 deep",
            {"content": b'{"query": "query ($x: String) { __typename }", "variables": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "headers": JSON},
        ),
        (
            "5,000-digit integer variable",
            {"content": b'{"query": "query ($x: Int!) { user(userId: $x) { id } }", "variables": {"x": ' + b"9" * 5000 + b"}}", "headers": {**JSON, **auth}},
        ),
        ("5,000-digit integer literal", {"json": {"query": "{ user(userId: %s) { id } }" % ("9" * 5000)}, "headers": auth}),
        ("lone surrogate in operationName", {"content": b'{"query": "{ __typename }", "operationName": "\\ud800"}', "headers": JSON}),
        ("multipart map is a list", {"files": {"operations": (None, multipart_ops), "map": (None, '["variables.file"]'), "0": ("a.csv", b"x")}, "headers": auth}),
        ("multipart map is a string", {"files": {"operations": (None, multipart_ops), "map": (None, '"0"'), "0": ("a.csv", b"x")}, "headers": auth}),
        ("Upload given as a string", {"json": {"query": UPLOAD, "variables": {"file": "a.csv"}}, "headers": auth}),
        ("Upload given as an object", {"json": {"query": UPLOAD, "variables": {"file": {"name": "a.csv"}}}, "headers": auth}),
        ("search of 1,000 words", {"json": {"query": SEARCH, "variables": {"s": " ".join(["a"] * 1000)}}, "headers": auth}),
        ("search of 60,000 words", {"json": {"query": SEARCH, "variables": {"s": " ".join(["ab"] * 60_000)}}, "headers": auth}),
        ("search of one 60,000-char word", {"json": {"query": SEARCH, "variables": {"s": "a" * 60_000}}, "headers": auth}),
        ("search of NUL", {"json": {"query": SEARCH, "variables": {"s": "\u0000"}}, "headers": auth}),
        ("search of a lone surrogate", {"content": b'{"query": "%s", "variables": {"s": "\\ud800"}}' % SEARCH.encode(), "headers": {**JSON, **auth}}),
        ("node(id:) with a zero-width space", {"json": {"query": "{ node(id: \"VXNlcjox\u200b\") { id } }"}, "headers": auth}),
    ]


def cpu_seconds(pid: int | None) -> float:
    """The server process's CPU time; 0 when it is not ours to read."""
    return 0.0 if pid is None else machine.cpu_seconds(pid)


def code_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "(not JSON)"
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        return (errors[0].get("extensions") or {}).get("code", "(no code)")
    data = json.dumps(body.get("data"))
    found = re.search(r'"code": "([A-Z_]+)"', data)
    return found.group(1) if found else "ok"


async def timed(client: httpx.AsyncClient, url: str, pid: int | None, runs: int, **kwargs: Any) -> tuple[httpx.Response, float, float]:
    """The last response, the median wall time and the median server CPU time of `runs` requests."""
    walls, cpus = [], []
    response = None
    for _ in range(runs):
        cpu, started = cpu_seconds(pid), time.perf_counter()
        response = await client.post(url, **kwargs)
        walls.append(time.perf_counter() - started)
        cpus.append(cpu_seconds(pid) - cpu)
    assert response is not None
    return response, statistics.median(walls), statistics.median(cpus)


async def poll_readyz(base: str, stop: asyncio.Event, latencies: list[float]) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            await client.get(f"{base}/readyz")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def run(base: str, token: str, pid: int | None, runs: int) -> None:
    url = f"{base}/graphql"
    async with httpx.AsyncClient(timeout=120) as client:
        idle: list[float] = []
        for _ in range(20):
            started = time.perf_counter()
            await client.get(f"{base}/readyz")
            idle.append(time.perf_counter() - started)
        _, base_wall, base_cpu = await timed(client, url, pid, 20, json={"query": "{ __typename }"})
        print(f"{'request':<40} {'status':>6} {'code':<26} {'ms':>8} {'cpu ms':>8}")
        print(f"{'baseline { __typename }':<40} {200:>6} {'ok':<26} {base_wall * 1000:>8.1f} {base_cpu * 1000:>8.1f}")
        stop, during = asyncio.Event(), []
        poller = asyncio.create_task(poll_readyz(base, stop, during))
        for name, kwargs in hostile(token):
            response, wall, cpu = await timed(client, url, pid, runs, **kwargs)
            print(f"{name:<40} {response.status_code:>6} {code_of(response):<26} {wall * 1000:>8.1f} {cpu * 1000:>8.1f}")
        stop.set()
        await poller
    print(
        f"/readyz idle: median {statistics.median(idle) * 1000:.1f} ms; while hostile requests ran: "
        f"median {statistics.median(during) * 1000:.1f} ms, max {max(during) * 1000:.1f} ms over {len(during)} polls"
    )


def start_dev() -> tuple[subprocess.Popen, str, str]:
    """`udt dev` on a free port with fresh demo data: (process, base URL, admin token)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "UDT_DATA_DIR": tempfile.mkdtemp(prefix="udt-hostile-")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/udt"), "dev", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    token = None
    for line in process.stdout:
        found = re.search(r"Bearer (udt_[\w-]+)", line)
        token = token or (found.group(1) if found else None)
        if "Uvicorn running" in line:
            break
    assert token, "udt dev printed no token"
    # keep reading its log, so that a full pipe never blocks the server
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, f"http://127.0.0.1:{port}", token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start udt dev)")
    parser.add_argument("--token", help="a token of an operator with the transfer permission, with --url")
    parser.add_argument("--pid", type=int, help="the service's process ID, to read its CPU time (with --url)")
    parser.add_argument("--runs", type=int, default=3, help="requests of each kind (the median is printed)")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url, args.token, args.pid, args.runs))
        return
    process, base, token = start_dev()
    try:
        asyncio.run(run(base, token, process.pid, args.runs))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
