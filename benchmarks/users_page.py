"""Benchmark: the users page against a plain endpoint serving the same data (issue 9, row 1; not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/users_page.py --users 100000 --clients 8 --seconds 20 --rounds 3

Seeds (or reuses) a tenant of 100,000 users with 30 records each
(`big_tenant.py`), starts the API (`udt serve`, one process) and the floor: a
plain Starlette + asyncpg endpoint, one process, reading the same 50 rows,
their teams, their counts per data type and the total from the same
database with hand-written SQL and answering the same JSON. Checks that
both answer the same, then lets `--clients` concurrent clients ask each for
`--seconds` per round, in turns of 2 s (so that both meet the same load from
whatever else runs on the machine), `--rounds` times, and prints requests
per second, p50 and p95 of each, and the ratio of throughputs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

from big_tenant import asyncpg_url, big_tenant, free_port, start, start_api, stop, token_for

SLICE = 2.0  # seconds of one side's turn
QUERY = """query ($first: Int) { users(filter: {active: true}, first: $first) {
  totalCount
  edges { node { id userId displayName email teams { name } data { dataType { key } count } } }
} }"""


def floor_app(slug: str):
    """The floor: what the page costs without GraphQL and the ORM."""
    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from graph.core.relay import to_global_id
    from models.userdata import DATA_TYPES

    pool: asyncpg.Pool | None = None
    order = {dt.key: i for i, dt in enumerate(DATA_TYPES)}

    async def page(request: Request) -> Response:
        nonlocal pool
        if pool is None:
            pool = await asyncpg.create_pool(asyncpg_url(), min_size=2, max_size=10)
        first = int(request.query_params.get("first", "50"))
        async with pool.acquire() as conn:
            tenant = await conn.fetchval("SELECT id FROM tenant WHERE slug = $1", slug)
            rows = await conn.fetch(
                "SELECT id, user_id, first_name, last_name, email FROM app_user"
                " WHERE tenant_id = $1 AND active ORDER BY user_id LIMIT $2",
                tenant, first,
            )
            total = await conn.fetchval("SELECT count(*) FROM app_user WHERE tenant_id = $1 AND active", tenant)
            pks = [r["id"] for r in rows]
            teams = await conn.fetch(
                "SELECT m.user_id, t.name FROM team_member m JOIN team t ON t.id = m.team_id"
                " WHERE m.user_id = ANY($1) ORDER BY t.name",
                pks,
            )
            counts = await conn.fetch(
                "SELECT owner_id, data_type, count(*) FROM owned_record WHERE owner_id = ANY($1) GROUP BY 1, 2"
                " UNION ALL SELECT evaluator_id, 'EVALUATION', count(*) FROM evaluation"
                "  WHERE evaluator_id = ANY($1) GROUP BY 1"
                " UNION ALL SELECT approver_id, 'EVALUATION', count(*) FROM evaluation"
                "  WHERE approver_id = ANY($1) AND approver_id <> evaluator_id GROUP BY 1"
                " UNION ALL SELECT user_id, 'AGENT_SCHEDULE', count(*) FROM agent_schedule"
                "  WHERE user_id = ANY($1) GROUP BY 1",
                pks,
            )
        team_names: dict[int, list[dict]] = {pk: [] for pk in pks}
        for user_pk, name in teams:
            team_names[user_pk].append({"name": name})
        owned: dict[int, dict[str, int]] = {pk: {} for pk in pks}
        for user_pk, key, n in counts:
            owned[user_pk][key] = owned[user_pk].get(key, 0) + n
        edges = [
            {
                "node": {
                    "id": to_global_id("User", r["id"]),
                    "userId": r["user_id"],
                    "displayName": f"{r['first_name']} {r['last_name']}".strip(),
                    "email": r["email"],
                    "teams": team_names[r["id"]],
                    "data": [
                        {"dataType": {"key": key}, "count": n}
                        for key, n in sorted(owned[r["id"]].items(), key=lambda kv: order[kv[0]])
                        if n
                    ],
                }
            }
            for r in rows
        ]
        return JSONResponse({"data": {"users": {"totalCount": total, "edges": edges}}})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/page", page), Route("/healthz", healthz)])


async def load(fetch, clients: int, seconds: float) -> tuple[list[float], float]:
    """Latencies of every request `clients` concurrent loops start in `seconds`, and the time they took."""
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await fetch()
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - started


def summary(name: str, latencies: list[float], seconds: float) -> float:
    rate = len(latencies) / seconds
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"  {name:<8} {rate:6.1f} req/s  p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms  ({len(latencies)} requests)")
    return rate


async def main(args: argparse.Namespace) -> None:
    import httpx

    slug = await big_tenant(args.users, 1, fresh=args.fresh)
    token = await token_for(slug, "admin")
    api_port, floor_port = free_port(), free_port()
    api = start_api(api_port)
    floor = start([sys.executable, __file__, "--serve-floor", str(floor_port), "--slug", slug], floor_port)
    try:
        limits = httpx.Limits(max_connections=args.clients)
        async with httpx.AsyncClient(limits=limits, timeout=120) as http:
            body = {"query": QUERY, "variables": {"first": args.first}}
            headers = {"Authorization": f"Bearer {token}"}

            async def service() -> dict:
                response = await http.post(f"http://127.0.0.1:{api_port}/graphql", json=body, headers=headers)
                response.raise_for_status()
                return response.json()

            async def plain() -> dict:
                response = await http.get(f"http://127.0.0.1:{floor_port}/page", params={"first": args.first})
                response.raise_for_status()
                return response.json()

            got, expected = await service(), await plain()
            if got != expected:
                sys.exit(f"the service and the floor disagree:\n{json.dumps(got)[:2000]}\n{json.dumps(expected)[:2000]}")
            users = got["data"]["users"]
            print(
                f"users(filter: {{active: true}}, first: {args.first}) as admin: {len(users['edges'])} users"
                f" of {users['totalCount']:,}, {len(json.dumps(got)):,} bytes; {args.clients} clients, {args.seconds} s each"
            )
            await load(service, args.clients, 2)  # warm both up
            await load(plain, args.clients, 2)
            slices = max(1, round(args.seconds / SLICE))
            for round_ in range(1, args.rounds + 1):
                # In turns of SLICE seconds, so that both meet the same load from anything else on the machine.
                floor_latencies, service_latencies, floor_time, service_time = [], [], 0.0, 0.0
                for _ in range(slices):
                    latencies, elapsed = await load(plain, args.clients, SLICE)
                    floor_latencies, floor_time = floor_latencies + latencies, floor_time + elapsed
                    latencies, elapsed = await load(service, args.clients, SLICE)
                    service_latencies, service_time = service_latencies + latencies, service_time + elapsed
                print(f"round {round_}:")
                floor_rate = summary("floor", floor_latencies, floor_time)
                service_rate = summary("service", service_latencies, service_time)
                print(f"  ratio    floor/service throughput {floor_rate / service_rate:.2f}x")
    finally:
        stop(api)
        stop(floor)


def serve_floor(port: int, slug: str) -> None:
    import uvicorn

    uvicorn.run(floor_app(slug), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="seed the tenant again")
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--slug", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_floor:
        serve_floor(options.serve_floor, options.slug)
    else:
        asyncio.run(main(options))
