"""Upload rows stored as the file's From and To cells read as their source and target after
migration 0006, on the suite's kind of database, and the preview shows the same cells as before."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate

from models import settings
from models.csvfile import as_written

BEFORE = "models.0005_revert"
OLD_ROWS = """
INSERT INTO tenant (id, slug, name) VALUES (1, 'm6', 'M6');
INSERT INTO app_user (id, user_id, first_name, last_name, username, active, tenant_admin, can_transfer, tenant_id)
    VALUES (1, 1, 'Ada', 'Admin', 'admin', TRUE, TRUE, TRUE, 1);
INSERT INTO bulk_upload (id, filename, created_at, row_count, pair_count, error_count, errors, people_form, tenant_id, uploaded_by_id)
    VALUES (1, 'people.csv', '2026-11-01 10:00:00+00:00', 2, 2, 0, '[]', TRUE, 1, 1),
           (2, 'pairs.csv', '2026-11-01 10:00:00+00:00', 2, 2, 0, '[]', FALSE, 1, 1);
INSERT INTO bulk_upload_row (upload_id, row_number, from_cell, to_cell, errors, has_errors)
    VALUES (1, 2, '21', '19', '[]', FALSE), (1, 3, '22', NULL, '[]', TRUE),
           (2, 2, '19', '21', '[]', FALSE), (2, 3, '20', NULL, '[]', TRUE);
"""


class Database:
    """A database of its own beside the suite's, migrated by tortoise like `udt migrate`."""

    def __init__(self, url: str, sqlite_path: Path | None) -> None:
        self.url, self.sqlite_path = url, sqlite_path

    async def migrate(self, target: str | None = None) -> None:
        async with TortoiseContext():
            await migrate(config=settings.tortoise_config(self.url), target=target)

    async def run(self, sql: str) -> list[tuple]:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path) as db:
                if sql.lstrip().upper().startswith("SELECT"):
                    return db.execute(sql).fetchall()
                db.executescript(sql)
                return []
        db = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
        try:
            if sql.lstrip().upper().startswith("SELECT"):
                return [tuple(r) for r in await db.fetch(sql)]
            await db.execute(sql)
            return []
        finally:
            await db.close()


@pytest.fixture
async def fresh(database: str, tmp_path: Path) -> AsyncIterator[Database]:
    if not database.startswith("postgres"):
        path = tmp_path / "migrated.sqlite3"
        yield Database(settings.sqlite_url(path), path)
        return
    name = f"udt_migration_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database.replace("postgres://", "postgresql://", 1))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(urlsplit(database)._replace(path=f"/{name}").geturl(), None)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


ROWS = "SELECT upload_id, row_number, {} FROM bulk_upload_row ORDER BY upload_id, row_number"


async def test_rows_stored_as_file_cells_become_source_and_target_cells(fresh: Database) -> None:
    await fresh.migrate(BEFORE)
    await fresh.run(OLD_ROWS)

    await fresh.migrate()

    # The people file's row 2 ("21,19": Jenny's row asks for John's data) moves 19 to 21, as does
    # the pairs file's "19,21"; a row without its source keeps its target.
    assert await fresh.run(ROWS.format("source_cell, target_cell")) == [
        (1, 2, "19", "21"), (1, 3, None, "22"), (2, 2, "19", "21"), (2, 3, "20", None),
    ]


async def test_the_preview_shows_each_rows_file_cells_as_before(fresh: Database) -> None:
    await fresh.migrate(BEFORE)
    await fresh.run(OLD_ROWS)
    before = await fresh.run(ROWS.format("from_cell, to_cell"))

    await fresh.migrate()
    forms = dict(await fresh.run("SELECT id, people_form FROM bulk_upload"))
    after = await fresh.run(ROWS.format("source_cell, target_cell"))

    shown = [(u, n, *as_written(s, t, bool(forms[u]))) for u, n, s, t in after]
    assert shown == before


async def test_the_migration_undone_gives_the_file_cells_back(fresh: Database) -> None:
    await fresh.migrate(BEFORE)
    await fresh.run(OLD_ROWS)
    before = await fresh.run(ROWS.format("from_cell, to_cell"))

    await fresh.migrate()
    await fresh.migrate(BEFORE)

    assert await fresh.run(ROWS.format("from_cell, to_cell")) == before
