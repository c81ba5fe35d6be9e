"""The service's PostgreSQL sessions: short statements, no per-statement extras.

Interactive requests run while a bulk moves rows; a statement that JIT-compiles,
starts parallel workers or pays a reset round trip when its connection goes back
takes CPU and time from every other request on a small machine (issue 17).
"""

from __future__ import annotations

import pytest
from tortoise import connections

from tests.support import World

pytestmark = pytest.mark.postgres


async def _show(name: str) -> str:
    _, rows = await connections.get("default").execute_query(f"SHOW {name}")
    return rows[0][0]


async def test_statements_are_never_jit_compiled_nor_run_by_parallel_workers(world: World) -> None:
    assert await _show("jit") == "off"
    assert await _show("max_parallel_workers_per_gather") == "0"


async def test_a_connection_goes_back_to_the_pool_with_its_session_but_without_an_open_transaction(world: World) -> None:
    db = connections.get("default")
    async with db.acquire_connection() as connection:
        await connection.execute("SET application_name = 'changed by this test'")
        await connection.execute("BEGIN")
        backend = await connection.fetchval("SELECT pg_backend_pid()")
    async with db.acquire_connection() as connection:
        assert await connection.fetchval("SELECT pg_backend_pid()") == backend  # the one just released: the pool is LIFO
        assert not connection.is_in_transaction()
        assert await connection.fetchval("SHOW application_name") == "changed by this test"  # no RESET ALL: one round trip less
        await connection.execute("RESET application_name")
