"""Shared by the users-page and people-file benchmarks: a big tenant, set-based, and a running API.

PostgreSQL only. The tenant has `admin` (User ID 1), an East lead limited to the
East view, and `users` people (User IDs 2..users+1, every tenth one inactive),
each in one team (every fifteenth in two) and owning `per_type` records of each
of the 28 generic data types, `per_type` evaluations (approved by someone
else) and one schedule: 30 records each for `per_type` 1, as `udt seed
--synthetic` would make them. It is written with INSERT ... SELECT over
generate_series, seconds for 100,000 users; a tenant of the same size is
reused on the next run unless `fresh`.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# `udt serve` needs the key that signs download links; a benchmark's API makes links with this one.
os.environ.setdefault("UDT_SECRET_KEY", secrets.token_urlsafe(32))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = "Ava Ben Carla Dev Emma Finn Grace Hugo Iris Jack Kira Liam Maya Noah Olga Paul Quinn Rosa Sam Tara".split()
LAST = "Adams Brown Clark Davis Evans Ford Green Hill Irwin Jones King Lopez Moore Nash Owen Price Reed Stone Turner Vance".split()
TEAMS = ("East 1", "East 2", "West 1", "West 2")


def asyncpg_url() -> str:
    from models import settings

    return settings.DATABASE_URL.replace("postgres://", "postgresql://", 1)


async def big_tenant(users: int, per_type: int, *, fresh: bool = False) -> str:
    """The slug of a tenant of `users` people with `per_type` records of each type; seeded if missing."""
    import asyncpg

    from graph.process.cli import apply_migrations
    from models.seed import GENERIC_TYPES

    await apply_migrations()
    slug = f"big-{users}x{per_type}"
    conn = await asyncpg.connect(asyncpg_url())
    try:
        existing = await conn.fetchval("SELECT id FROM tenant WHERE slug = $1", slug)
        if existing is not None and not fresh:
            return slug
        started = time.perf_counter()
        async with conn.transaction():
            if existing is not None:
                await conn.execute("DELETE FROM tenant WHERE id = $1", existing)
            tenant = await conn.fetchval("INSERT INTO tenant (slug, name) VALUES ($1, $1) RETURNING id", slug)
            teams = [
                await conn.fetchval("INSERT INTO team (tenant_id, name) VALUES ($1, $2) RETURNING id", tenant, name)
                for name in TEAMS
            ]
            east = await conn.fetchval("INSERT INTO view (tenant_id, name) VALUES ($1, 'East') RETURNING id", tenant)
            await conn.execute("INSERT INTO view_team (view_id, team_id) VALUES ($1, $2), ($1, $3)", east, *teams[:2])
            await conn.execute(
                "INSERT INTO app_user (tenant_id, user_id, first_name, last_name, username, email, active,"
                " tenant_admin, can_transfer, view_id) VALUES"
                " ($1, 1, 'Ada', 'Admin', 'admin', NULL, true, true, false, NULL),"
                " ($1, $2, 'Eve', 'Lead', 'east.lead', NULL, true, false, true, $3)",
                tenant, users + 2, east,
            )
            await conn.execute(
                "INSERT INTO app_user (tenant_id, user_id, first_name, last_name, username, email, active,"
                " tenant_admin, can_transfer)"
                " SELECT $1, g, ($2::text[])[1 + g % 20], ($3::text[])[1 + (g / 20) % 20], 'user' || g,"
                "  'user' || g || '@' || $4 || '.example.com', g % 10 <> 7, false, false"
                " FROM generate_series(2, $5 + 1) g",
                tenant, FIRST, LAST, slug, users,
            )
            people = "FROM app_user u WHERE u.tenant_id = $1 AND u.user_id BETWEEN 2 AND $2 + 1"
            # East: even User IDs, like the demo; every fifteenth person sits in a team of the other side too.
            await conn.execute(
                f"INSERT INTO team_member (user_id, team_id) SELECT u.id, ($3::int[])[1 + u.user_id % 4] {people}"
                f" UNION ALL SELECT u.id, ($3::int[])[1 + (u.user_id + 1) % 4] {people} AND u.user_id % 15 = 0",
                tenant, users, [teams[0], teams[2], teams[1], teams[3]],
            )
            if per_type:
                await conn.execute(
                    "INSERT INTO owned_record (data_type, owner_id, payload, created_at)"
                    " SELECT t.key, u.id, '{}', now() FROM app_user u, unnest($3::text[]) t(key), generate_series(1, $4) n"
                    " WHERE u.tenant_id = $1 AND u.user_id BETWEEN 2 AND $2 + 1",
                    tenant, users, GENERIC_TYPES, per_type,
                )
                await conn.execute(
                    "INSERT INTO evaluation (evaluator_id, approver_id, score, created_at)"
                    " SELECT u.id, a.id, 50, now() FROM app_user u CROSS JOIN generate_series(1, $3) n"
                    " JOIN app_user a ON a.tenant_id = u.tenant_id AND a.user_id = 2 + (u.user_id * 7919 + n) % $2"
                    " WHERE u.tenant_id = $1 AND u.user_id BETWEEN 2 AND $2 + 1",
                    tenant, users, per_type,
                )
                await conn.execute(
                    f"INSERT INTO agent_schedule (user_id, pattern, created_at) SELECT u.id, '{{}}', now() {people}",
                    tenant, users,
                )
        for table in ("app_user", "team_member", "owned_record", "evaluation", "agent_schedule"):
            await conn.execute(f"ANALYZE {table}")
        print(f"seeded {slug}: {users:,} users x {30 * per_type} records in {time.perf_counter() - started:.1f} s")
        return slug
    finally:
        await conn.close()


async def token_for(slug: str, username: str) -> str:
    from models.db import close_db, open_db
    from models.tenancy import ApiToken, User

    opened = await open_db()
    try:
        return await ApiToken.issue(await User.get(tenant__slug=slug, username=username))
    finally:
        if opened:
            await close_db()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], port: int, *, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start a server process and wait until it answers on `port`."""
    # The API logs as in production (an access line per request); to `log` or /dev/null, not a terminal.
    with log.open("wb") if log else open(os.devnull, "wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=out, stdout=out)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{argv} did not start")
            time.sleep(0.1)


def start_api(port: int) -> subprocess.Popen:
    """`udt serve`: one API process, as in production."""
    return start([sys.executable, "-m", "graph.process.cli", "serve", "--port", str(port)], port)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)
