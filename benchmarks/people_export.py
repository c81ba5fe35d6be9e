"""Benchmark: the people file against COPY of the same columns (issue 9, row 4; not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/people_export.py --users 100000 --rounds 3

Seeds (or reuses) a tenant of 100,000 users (`big_tenant.py`), starts the API
(`udt serve`), and in turn: downloads GET /exports/people.csv as its admin
(streamed to the last byte, by curl), and runs the floor, `COPY (SELECT ...) TO
STDOUT` of the same columns in the same order through asyncpg. Checks that
both give the same rows, then prints each time and the ratio. Then streams
the file in process for 10,000 and 100,000 users with tracemalloc on: the
peak memory should not grow with the number of users.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import tempfile
import time
import tracemalloc

from big_tenant import asyncpg_url, big_tenant, free_port, start_api, stop, token_for

FLOOR = """
  SELECT u.user_id, '', u.first_name, u.last_name, u.username, coalesce(u.email, ''),
         CASE WHEN u.active THEN 'Active' ELSE 'Inactive' END,
         CASE WHEN u.tenant_admin THEN 'Yes' ELSE 'No' END,
         coalesce((SELECT string_agg(t.name, '; ' ORDER BY t.name)
                   FROM team_member m JOIN team t ON t.id = m.team_id WHERE m.user_id = u.id), '')
  FROM app_user u JOIN tenant ON tenant.id = u.tenant_id WHERE tenant.slug = $1 ORDER BY u.user_id"""  # run as COPY (...) TO STDOUT WITH (FORMAT csv)


async def floor(slug: str) -> tuple[float, bytes]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_url())
    try:
        sink = io.BytesIO()

        async def write(data: bytes) -> None:
            sink.write(data)

        started = time.perf_counter()
        await conn.copy_from_query(FLOOR, slug, output=write, format="csv")
        return time.perf_counter() - started, sink.getvalue()
    finally:
        await conn.close()


async def service(port: int, token: str) -> tuple[float, bytes]:
    """The download's time, by curl (a client that is not the bottleneck: httpx adds 0.3 s), and its body."""
    with tempfile.NamedTemporaryFile() as body:
        curl = await asyncio.create_subprocess_exec(
            "curl", "--silent", "--fail", "--output", body.name, "--write-out", "%{time_total}",
            "--header", f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/exports/people.csv",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await curl.communicate()
        if curl.returncode:
            raise SystemExit(f"curl failed ({curl.returncode})")
        return float(out), body.read()


def parsed(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


async def memory(sizes: list[int]) -> None:
    """The peak allocated while the file streams in process: the same whatever the number of users."""
    from models.csv_exports import people_csv
    from models.tenancy import User

    for users in sizes:
        slug = await big_tenant(users, 1)
        admin = await User.get(tenant__slug=slug, username="admin")
        tracemalloc.start()
        rows = 0
        async for chunk in people_csv(admin):
            rows += chunk.count("\n")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  {users:>7,} users: {rows - 1:,} rows, peak {peak / 1e6:.1f} MB allocated while streaming")


async def main(args: argparse.Namespace) -> None:
    from models.db import close_db, open_db

    slug = await big_tenant(args.users, 1)
    await open_db()
    token = await token_for(slug, "admin")
    port = free_port()
    api = start_api(port)
    try:
        floor_time, floor_bytes = await floor(slug)
        service_time, service_bytes = await service(port, token)
        header, *rows = parsed(service_bytes)
        if rows != parsed(floor_bytes):
            raise SystemExit("the people file and the floor disagree")
        print(f"people file of {len(rows):,} users, {len(service_bytes) / 1e6:.1f} MB; {len(header)} columns")
        floors, services = [], []
        for round_ in range(1, args.rounds + 1):
            floor_time, _ = await floor(slug)
            service_time, _ = await service(port, token)
            floors.append(floor_time)
            services.append(service_time)
            print(
                f"round {round_}: floor (COPY) {floor_time:.2f} s, service (GET /exports/people.csv) {service_time:.2f} s,"
                f" ratio {service_time / floor_time:.2f}x"
            )
        # One download is at the mercy of whatever else the machine runs that second: the best of each.
        print(f"best: floor {min(floors):.2f} s, service {min(services):.2f} s, ratio {min(services) / min(floors):.2f}x")
    finally:
        stop(api)
    if args.memory:
        print("memory:")
        await memory([10_000, args.users])
    await close_db()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the in-process memory check")
    asyncio.run(main(parser.parse_args()))
