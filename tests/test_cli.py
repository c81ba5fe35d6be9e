"""The `udt` command, as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import sys

from models.tenancy import ApiToken
from tests.support import World


async def udt(*args: str, database: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "graph.cli", *args,
        env={**os.environ, "DATABASE_URL": database, "UDT_LOG_LEVEL": "WARNING", **env},
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
    from graph.schema import schema

    code, out = await udt("export-schema", database=database)
    assert code == 0 and out == schema.as_str() + "\n"


async def test_serve_and_worker_refuse_to_start_without_a_shared_redis(database: str) -> None:
    for command in ("serve", "worker"):
        code, out = await udt(command, database=database, REDIS_URL="")
        assert code != 0 and "needs REDIS_URL" in out


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
