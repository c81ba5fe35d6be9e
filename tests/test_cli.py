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
