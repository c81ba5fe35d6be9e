"""The `udt` command, as an operator runs it: the console script pip installed, in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import httpx
from redis.asyncio import Redis

from models.tenancy import ApiToken, Tenant
from tests.support import Api, World, free_port

UDT = str(Path(sys.executable).with_name("udt"))  # installed beside this Python by `pip install -e .`


def _env(**env: str) -> dict[str, str]:
    return {**os.environ, "UDT_LOG_LEVEL": "WARNING", **env}


async def udt(*args: str, database: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        UDT, *args, env=_env(DATABASE_URL=database, **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_token_create_prints_a_working_token_alone_on_its_last_line(world: World, database: str) -> None:
    code, out = await udt("token", "create", "--tenant", world.tenant.slug, "--username", "lead", database=database)
    assert code == 0
    token = out.strip().splitlines()[-1]
    user = await ApiToken.authenticate(token)
    assert user is not None and user.id == world.pk(2)


async def test_token_create_for_an_unknown_user_fails_clearly(world: World, database: str) -> None:
    code, out = await udt("token", "create", "--tenant", world.tenant.slug, "--username", "nobody", database=database)
    assert code != 0 and "no user 'nobody'" in out


async def test_export_schema_prints_the_sdl(database: str) -> None:
    from graph.api.schema import schema

    code, out = await udt("export-schema", database=database)
    assert code == 0 and out == schema.as_str() + "\n"


async def test_a_synthetic_tenant_of_too_few_records_per_user_to_spread_is_refused(database: str) -> None:
    code, out = await udt("seed", "--synthetic", "--tenant", "few", "--users", "3", "--records-per-user", "5", database=database)
    assert code != 0 and "--records-per-user is 0 (people only) or at least 16" in out
    assert not await Tenant.exists(slug="few")


async def test_serve_and_worker_refuse_to_start_without_a_shared_redis(database: str) -> None:
    for command in ("serve", "worker"):
        code, out = await udt(command, database=database, REDIS_URL="")
        assert code != 0 and "needs REDIS_URL" in out


async def test_every_service_refuses_to_start_with_an_oidc_issuer_but_no_audience(database: str, redis_url: str) -> None:
    for command in ("dev", "serve", "worker"):
        code, out = await udt(command, database=database, REDIS_URL=redis_url, UDT_OIDC_ISSUER="https://login.example.com")
        assert code != 0, out
        assert f"udt {command} cannot start: UDT_OIDC_ISSUER is set but UDT_OIDC_AUDIENCE is not" in out


async def test_token_create_expires_in_90_days_by_default_or_as_told(world: World, database: str) -> None:
    from datetime import timedelta

    for args, lifetime in (((), timedelta(days=90)), (("--expires-in", "12h"), timedelta(hours=12)),
                           (("--expires-in", "90m"), timedelta(minutes=90)), (("--expires-in", "30d"), timedelta(days=30)),
                           (("--expires-in", "never"), None)):
        code, out = await udt("token", "create", "--tenant", world.tenant.slug, "--username", "lead", *args, database=database)
        assert code == 0
        row = await ApiToken.get(token_hash=ApiToken.hash(out.strip().splitlines()[-1]))
        if lifetime is None:
            assert row.expires_at is None and "never expires" in out
        else:
            assert abs(row.expires_at - row.created_at - lifetime) < timedelta(seconds=5)


async def test_token_create_refuses_a_duration_it_cannot_read(world: World, database: str) -> None:
    before = await ApiToken.all().count()
    for bad in ("5x", "0d", "-1d", "soon", "1.5h"):
        code, out = await udt("token", "create", "--tenant", world.tenant.slug, "--username", "lead", f"--expires-in={bad}", database=database)
        assert code != 0 and "is not a duration like 30d, 12h, 90m or never" in out
    assert await ApiToken.all().count() == before


async def test_token_list_shows_each_token_without_its_secret(world: World, database: str) -> None:
    code, out = await udt("token", "list", "--tenant", world.tenant.slug, database=database)
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split() == ["ID", "USER", "CREATED", "EXPIRES", "LAST", "USED", "STATUS"]
    ids = await ApiToken.filter(user__tenant_id=world.tenant.id).order_by("id").values_list("id", flat=True)
    assert [int(r.split()[0]) for r in rows] == ids
    assert [r.split()[1] for r in rows] == ["admin", "lead", "clerk"]
    assert all(r.split()[-1] == "live" for r in rows)
    hashes = await ApiToken.filter(user__tenant_id=world.tenant.id).values_list("token_hash", flat=True)
    assert not any(secret in out for secret in [*world.tokens.values(), *hashes])


async def test_token_list_of_an_unknown_tenant_fails_clearly(database: str) -> None:
    code, out = await udt("token", "list", "--tenant", "no-such-tenant", database=database)
    assert code != 0 and "no tenant 'no-such-tenant'" in out


async def test_token_revoke_ends_a_token_at_once(world: World, database: str) -> None:
    row = await ApiToken.get(token_hash=ApiToken.hash(world.lead))
    code, out = await udt("token", "revoke", str(row.id), database=database)
    assert code == 0 and "revoked" in out
    assert await ApiToken.authenticate(world.lead) is None
    assert (await ApiToken.authenticate(world.admin)).id == world.pk(1)
    _, listed = await udt("token", "list", "--tenant", world.tenant.slug, database=database)
    assert [line.split()[-1] for line in listed.splitlines() if line.split()[0] == str(row.id)] == ["revoked"]
    code, out = await udt("token", "revoke", str(row.id), database=database)
    assert code != 0 and "no live token" in out
    code, out = await udt("token", "revoke", "999999999", database=database)
    assert code != 0 and "no live token" in out


async def test_migrate_then_seed_demo_on_a_fresh_sqlite_file_gives_the_demo_tenants(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    database = f"sqlite://{path}"
    assert await udt("migrate", database=database) == (0, "migrations applied\n")
    assert await udt("seed", "--demo", database=database) == (0, "demo data loaded\n")
    with contextlib.closing(sqlite3.connect(path)) as db:
        tenants = {slug for (slug,) in db.execute("SELECT slug FROM tenant")}
        john = db.execute(
            "SELECT first_name, last_name FROM app_user JOIN tenant ON tenant.id = app_user.tenant_id "
            "WHERE tenant.slug = 'demo' AND user_id = 19"
        ).fetchall()
    assert tenants == {"demo", "acme"} and john == [("John", "Smith")]
    assert await udt("seed", "--demo", database=database) == (0, "demo data already present\n")


def _running(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for a parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def test_dev_runs_everything_on_embedded_defaults_and_sigterm_stops_it_and_its_redis(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in _env(UDT_DATA_DIR=str(tmp_path)).items() if k not in ("DATABASE_URL", "REDIS_URL")}
    process = await asyncio.create_subprocess_exec(
        UDT, "dev", "--port", str(port), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output: list[str] = []

    async def read_output() -> None:  # keep the pipe drained, or the server blocks writing its log
        async for line in process.stdout:  # type: ignore[union-attr]
            output.append(line.decode())

    reader = asyncio.create_task(read_output())
    api = Api(f"http://127.0.0.1:{port}")
    redis_pid = 0
    try:
        async with asyncio.timeout(90):
            while not any("Redis: " in line for line in output):
                assert process.returncode is None, "".join(output)
                await asyncio.sleep(0.1)
            printed = "".join(output)
            redis_url = re.search(r"Redis: (\S+)", printed).group(1)  # type: ignore[union-attr]
            redis = Redis.from_url(redis_url)
            redis_pid = (await redis.info("server"))["process_id"]  # first: stopped below whatever fails
            await redis.aclose()
            assert _running(redis_pid)
            token = re.search(r'"Bearer (udt_[^"]+)"', printed).group(1)  # type: ignore[union-attr]
            assert (tmp_path / "udt.sqlite3").exists()
            async with httpx.AsyncClient() as client:
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        ready = await client.get(f"{api.base}/readyz")
                        if ready.status_code == 200:
                            break
                    await asyncio.sleep(0.2)
            assert ready.json() == {"status": "ok", "database": "ok", "redis": "ok"}
            link = re.search(r"signed in as admin by this link: (\S+)", printed).group(1)  # type: ignore[union-attr]
            assert link == f"{api.base}/console#token={token}"  # in the fragment, never the query
            async with httpx.AsyncClient() as client:
                assert (await client.get(link.split("#")[0])).status_code == 200
            found = await api('{ users(filter: {search: "smith"}) { edges { node { userId displayName } } } }', token)
            assert {"userId": 19, "displayName": "John Smith"} in [e["node"] for e in found["users"]["edges"]]

            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            while _running(redis_pid):  # its private redis-server stops with it
                await asyncio.sleep(0.1)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if redis_pid and _running(redis_pid):  # a failed run leaves no server behind
            os.kill(redis_pid, signal.SIGKILL)
        await reader


async def test_transfers_list_shows_transfers_newest_first_filtered_by_tenant_and_status(world: World, database: str) -> None:
    from models import running, starting
    from tests.support import run_pairs

    await world.stock(10, 11)
    done, _ = await starting.start_single(world.users[1], 10, 20)
    await run_pairs(done.id)
    queued, _ = await starting.start_single(world.users[1], 11, 21)
    code, out = await udt("transfers", "list", "--tenant", world.tenant.slug, database=database)
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split()[:5] == ["ID", "TENANT", "KIND", "STATUS", "DONE/PAIRS"]
    assert [r.split()[:7] for r in rows] == [
        [str(queued.id), world.tenant.slug, "SINGLE", "QUEUED", "0/1", "0", "0"],
        [str(done.id), world.tenant.slug, "SINGLE", "SUCCEEDED", "1/1", "1", "0"],
    ]
    code, out = await udt("transfers", "list", "--tenant", world.tenant.slug, "--status", "succeeded", database=database)
    assert code == 0 and [r.split()[0] for r in out.strip().splitlines()[1:]] == [str(done.id)]
    await running.cancel(queued)


async def test_transfers_show_gives_status_counters_message_and_each_failed_pair_with_its_code(world: World, database: str) -> None:
    from graph.core.relay import to_global_id
    from models import bulk
    from tests.support import run_pairs

    await world.stock(10, 11)
    upload = await bulk.create_upload(world.users[1], "people.csv", b"Source User ID,Target User ID\n10,20\n11,21\n")
    transfer, _ = await bulk.start(world.users[1], upload)
    world.users[21].tenant_admin = True  # its pair fails when applied
    await world.users[21].save()
    await run_pairs(transfer.id)
    for ref in (str(transfer.id), to_global_id("Transfer", transfer.id)):
        code, out = await udt("transfers", "show", ref, database=database)
        assert code == 0, out
        assert "status:        PARTIALLY_FAILED" in out
        assert "pairs:         2 total, 2 processed, 1 succeeded, 1 failed" in out
        assert "message:       Errors occurred during data transfer." in out
        assert f"upload:        {upload.id} (people.csv)" in out
        assert "data types:    all" in out and "revert of:     -" in out
        failed = out.split("failed pairs (1):\n", 1)[1].splitlines()
        assert failed[0].split() == ["ROW", "SOURCE", "TARGET", "CODE", "MESSAGE"]
        assert failed[1].split()[:4] == ["3", "11", "21", "TENANT_ADMIN"]


async def test_transfers_show_names_the_data_types_a_transfer_was_limited_to(world: World, database: str) -> None:
    from models import starting

    await world.give(10, "CCR")
    transfer, problems = await starting.start_single(world.users[1], 10, 20, data_types=["EVALUATION", "CCR"])
    assert problems == []
    code, out = await udt("transfers", "show", str(transfer.id), database=database)
    assert code == 0, out
    assert f"data types:    {', '.join(transfer.data_types)}" in out and "CCR" in out and "EVALUATION" in out


async def test_transfers_commands_refuse_unknown_tenants_and_transfers_clearly(database: str) -> None:
    code, out = await udt("transfers", "list", "--tenant", "no-such-tenant", database=database)
    assert code != 0 and "no tenant 'no-such-tenant'" in out
    code, out = await udt("transfers", "show", "999999999", database=database)
    assert code != 0 and "no transfer 999999999" in out
    code, out = await udt("transfers", "show", "not-an-id", database=database)
    assert code != 0 and "neither a transfer number nor a transfer's GraphQL ID" in out
    code, out = await udt("transfers", "list", "--status", "DONE", database=database)
    assert code != 0 and "invalid choice" in out
