"""Benchmark: every hostile request is answered fast, and /readyz keeps answering (not a test).

    .venv/bin/python benchmarks/hostile_requests.py                 # starts its own `udt dev`
    .venv/bin/python benchmarks/hostile_requests.py --url http://127.0.0.1:8011 --token udt_...

Sends each hostile document or body of issues 6 and 17 to a running service,
several times, and prints per request the status, the code of the answer, the
median time to answer and the server process's CPU time per request, beside a
baseline `{ __typename }` measured in the same run. Every request carries the
token unless its name says "no token". The cases of issue 17 that an HTTP client
cannot send (a head promising a body that never comes, a chunked body past the
limit) are written on a socket of their own. Meanwhile a second client polls
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
from collections.abc import Awaitable, Callable
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
    """(name, httpx.request keyword arguments) of every hostile request."""
    page = "users(first: 100) { edges { node { id userId displayName teams { name } data { count } } } }"
    multipart_ops = json.dumps({"query": UPLOAD, "variables": {"file": None}})
    csv = ("a.csv", b"From User ID,To User ID\n")
    return [
        ("no token, introspection", {"json": {"query": "{ __schema { types { name } } }"}, "headers": {"Authorization": ""}}),
        ("PUT /graphql", {"method": "PUT", "json": {"query": "{ __typename }"}}),
        ("DELETE /graphql", {"method": "DELETE"}),
        ("GET /no-such-path", {"method": "GET", "path": "/no-such-path"}),
        ("multipart: two files to one path", {"files": {"operations": (None, multipart_ops), "map": (None, '{"0": ["variables.file"], "1": ["variables.file"]}'), "0": csv, "1": csv}}),
        ("multipart: one file twice to one path", {"files": {"operations": (None, multipart_ops), "map": (None, '{"0": ["variables.file", "variables.file"]}'), "0": csv}}),
        ("multipart: map names a missing part", {"files": {"operations": (None, multipart_ops), "map": (None, '{"1": ["variables.file"]}'), "0": csv}}),
        ("multipart: a part no map entry names", {"files": {"operations": (None, multipart_ops), "map": (None, "{}"), "0": csv}}),
        ("multipart: path to a non-null", {"files": {"operations": (None, json.dumps({"query": UPLOAD, "variables": {"file": 1}})), "map": (None, '{"0": ["variables.file"]}'), "0": csv}}),
        ("nested fragments, 10 levels", {"json": {"query": fragments(10)}}),
        ("nested fragments, 20 levels", {"json": {"query": fragments(20)}}),
        ("nested fragments, 40 levels", {"json": {"query": fragments(40)}}),
        ("1,000 x __typename (tokens)", {"json": {"query": "{" + " __typename" * 1000 + "}"}}),
        ("240 x viewer { canTransfer }", {"json": {"query": "{" + " viewer { canTransfer }" * 240 + "}"}}),
        ("5,000 nested brackets", {"json": {"query": "{ __typename(x: " + "[" * 5000 + "]" * 5000 + ") }"}}),
        ("25 aliased pages of 100 users (cost)", {"json": {"query": "{" + " ".join(f"u{i}: {page}" for i in range(25)) + "}"}}),
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
            {"content": b'{"query": "query ($x: Int!) { user(userId: $x) { id } }", "variables": {"x": ' + b"9" * 5000 + b"}}", "headers": JSON},
        ),
        ("5,000-digit integer literal", {"json": {"query": "{ user(userId: %s) { id } }" % ("9" * 5000)}}),
        ("lone surrogate in operationName", {"content": b'{"query": "{ __typename }", "operationName": "\\ud800"}', "headers": JSON}),
        ("multipart map is a list", {"files": {"operations": (None, multipart_ops), "map": (None, '["variables.file"]'), "0": ("a.csv", b"x")}}),
        ("multipart map is a string", {"files": {"operations": (None, multipart_ops), "map": (None, '"0"'), "0": ("a.csv", b"x")}}),
        ("Upload given as a string", {"json": {"query": UPLOAD, "variables": {"file": "a.csv"}}}),
        ("Upload given as an object", {"json": {"query": UPLOAD, "variables": {"file": {"name": "a.csv"}}}}),
        ("search of 1,000 words", {"json": {"query": SEARCH, "variables": {"s": " ".join(["a"] * 1000)}}}),
        ("search of 60,000 words", {"json": {"query": SEARCH, "variables": {"s": " ".join(["ab"] * 60_000)}}}),
        ("search of one 60,000-char word", {"json": {"query": SEARCH, "variables": {"s": "a" * 60_000}}}),
        ("search of NUL", {"json": {"query": SEARCH, "variables": {"s": "\u0000"}}}),
        ("search of a lone surrogate", {"content": b'{"query": "%s", "variables": {"s": "\\ud800"}}' % SEARCH.encode(), "headers": JSON}),
        ("node(id:) with a zero-width space", {"json": {"query": "{ node(id: \"VXNlcjox\u200b\") { id } }"}}),
    ]


def on_a_socket(token: str) -> list[tuple[str, bytes]]:
    """(name, bytes written) of the requests of issue 17 that no HTTP client sends: each head
    promises more than follows, so only an answer given without the rest comes back."""
    auth = f"Authorization: Bearer {token}\r\n"

    def head(content_type: str, length: str, extra: str = "") -> bytes:
        return f"POST /graphql HTTP/1.1\r\nHost: b\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n{extra}\r\n".encode()

    chunked = f"POST /graphql HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{auth}\r\n".encode()
    return [
        ("no token, multipart of 5 GB: headers only", head("multipart/form-data; boundary=x", "5000000000")),
        ("no token, JSON of 5 GB: headers only", head("application/json", "5000000000")),
        ("JSON declaring 5 GB, 6 bytes sent", head("application/json", "5000000000", auth) + b'{"a":1'),
        ("multipart declaring 5 GB, 6 bytes sent", head("multipart/form-data; boundary=x", "5000000000", auth) + b"--x\r\nC"),
        ("chunked JSON one byte past 1 MB, never ended", chunked + (b"10000\r\n" + b" " * 65536 + b"\r\n") * 16 + b"1\r\n \r\n"),
    ]


async def exchange(base: str, data: bytes) -> tuple[int, str]:
    """Writes `data` on a new connection and reads the answer: (status, code)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(30):
            status = int((await reader.readuntil(b"\r\n")).split()[1])
            length = 0
            while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode().partition(":")
                length = int(value) if name.strip().lower() == "content-length" else length
            body = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    return status, body["errors"][0]["extensions"]["code"]


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


async def answer_or_reset(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
    """The response; None when the connection was reset first. A body refused before it is read
    (413, 401) is answered and the connection closed while the client may still be sending it:
    its TCP stack may then see a reset before it reads the answer."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TransportError:
        return None


async def timed(pid: int | None, runs: int, send: Callable[[], Awaitable[Any]]) -> tuple[Any, float, float]:
    """The last answer, the median wall time and the median server CPU time of `runs` requests."""
    walls, cpus = [], []
    answer = None
    for _ in range(runs):
        cpu, started = cpu_seconds(pid), time.perf_counter()
        answer = await send()
        walls.append(time.perf_counter() - started)
        cpus.append(cpu_seconds(pid) - cpu)
    return answer, statistics.median(walls), statistics.median(cpus)


async def poll_readyz(base: str, stop: asyncio.Event, latencies: list[float]) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            await client.get(f"{base}/readyz")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def run(base: str, token: str, pid: int | None, runs: int) -> None:
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {token}"}) as client:
        idle: list[float] = []
        for _ in range(20):
            started = time.perf_counter()
            await client.get(f"{base}/readyz")
            idle.append(time.perf_counter() - started)
        _, base_wall, base_cpu = await timed(pid, 20, lambda: client.post(f"{base}/graphql", json={"query": "{ __typename }"}))
        print(f"{'request':<46} {'status':>6} {'code':<26} {'ms':>8} {'cpu ms':>8}")
        print(f"{'baseline { __typename }':<46} {200:>6} {'ok':<26} {base_wall * 1000:>8.1f} {base_cpu * 1000:>8.1f}")
        stop, during = asyncio.Event(), []
        poller = asyncio.create_task(poll_readyz(base, stop, during))
        for name, kwargs in hostile(token):
            method, url = kwargs.pop("method", "POST"), base + kwargs.pop("path", "/graphql")
            response, wall, cpu = await timed(pid, runs, lambda: answer_or_reset(client, method, url, **kwargs))
            status, code = (response.status_code, code_of(response)) if response else ("-", "(connection reset)")
            print(f"{name:<46} {status:>6} {code:<26} {wall * 1000:>8.1f} {cpu * 1000:>8.1f}")
        for name, data in on_a_socket(token):
            (status, code), wall, cpu = await timed(pid, runs, lambda: exchange(base, data))
            print(f"{name:<46} {status:>6} {code:<26} {wall * 1000:>8.1f} {cpu * 1000:>8.1f}")
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
