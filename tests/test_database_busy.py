"""A request that meets the database busy with a worker's pair is told to try again, never
INTERNAL_ERROR. On SQLite a pair holds the file's only write lock for as long as its
transaction lasts; a request that has to write waits for it up to the busy timeout, then is
answered SERVICE_UNAVAILABLE (retryable, nothing stored) and works once the lock is free.
PostgreSQL locks rows, not the database: there the same upload simply works."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models import settings
from models.transfers import BulkUpload
from tests.processes import Workers, until, worker_env
from tests.support import START, Api, GraphQLErrors, World

ON_SQLITE = not os.environ.get("DATABASE_URL", "").startswith("postgres")
CANCEL = "mutation ($id: ID!) { cancelTransfer(id: $id) { userErrors { code } } }"


@pytest.fixture
async def workers(world: World, database: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Workers]:
    """`udt worker` processes on a queue of the test's own."""
    queue = f"udt:test-busy:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    found = Workers(worker_env(database, redis_url, queue), tmp_path / "pairs")
    yield found
    await found.stop_all()


async def test_an_upload_while_a_pair_holds_the_write_lock_is_retryable_and_works_afterwards(
    api: Api, world: World, workers: Workers
) -> None:
    await world.stock(10, 11)
    started = (await api(START, world.admin, s=10, t=20, confirm=True))["startTransfer"]
    transfer_id = started["transfer"]["id"]
    await workers.start(HANG_AFTER="0")  # its first pair's transaction stays open for an hour
    await until(lambda: workers.pairs_begun() >= 1, 60)
    uploads = await BulkUpload.all().count()
    try:
        answer = await api.upload(world.admin, "Source User ID,Target User ID\n11,21\n")
    except GraphQLErrors as refused:
        assert ON_SQLITE, "PostgreSQL has no database-wide write lock: nothing to wait for"
        assert refused.codes == ["SERVICE_UNAVAILABLE"], refused.errors
        assert await BulkUpload.all().count() == uploads  # nothing stored
    else:
        assert not ON_SQLITE or answer["upload"], answer
    finally:
        await workers.stop_all()  # the pair rolls back, the lock is free
    answer = await api.upload(world.admin, "Source User ID,Target User ID\n11,21\n")
    assert answer["userErrors"] == [] and answer["upload"]["pairCount"] == 1
    await api(CANCEL, world.admin, id=transfer_id)
    await workers.start()  # a quick worker takes up the lane and ends it
    await api.wait_finished(world.admin, transfer_id)
