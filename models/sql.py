"""Raw SQL for the hot paths, written once for SQLite and PostgreSQL.

The ORM builds a query object per statement; a pair applies a handful of
statements per storage table and the journal doubles them, so the engine
writes its SQL directly. `Statement` numbers the parameters the way the
connection's driver wants them (`?` or `$n`) and spells a list parameter as
each database takes it best. Table, column and data type names come from the
registry in code, never from a request.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.backends.base.client import BaseDBAsyncClient


def is_postgres(db: BaseDBAsyncClient) -> bool:
    return db.capabilities.dialect == "postgres"


class Statement:
    """Collects parameters while the SQL text is being written."""

    def __init__(self, db: BaseDBAsyncClient) -> None:
        self.db = db
        self.postgres = is_postgres(db)
        self.values: list[object] = []

    def p(self, value: object) -> str:
        """A placeholder for one value."""
        self.values.append(value)
        return f"${len(self.values)}" if self.postgres else "?"

    def integer(self, value: int | None) -> str:
        """A placeholder for an integer where nothing tells PostgreSQL its type (a SELECT list)."""
        return f"CAST({self.p(value)} AS INTEGER)"

    def isin(self, expression: str, values: Sequence[object]) -> str:
        """`expression` is one of `values` (never empty: callers skip empty choices)."""
        if self.postgres:
            return f"{expression} = ANY({self.p(list(values))})"
        return f"{expression} IN ({', '.join(self.p(v) for v in values)})"

    async def rows(self, sql: str) -> list[tuple]:
        _, found = await self.db.execute_query(sql, self.values)
        return [tuple(row) for row in found]

    async def run(self, sql: str) -> int:
        """Run a data-changing statement; returns the rows it changed."""
        changed, _ = await self.db.execute_query(sql, self.values)
        return changed


def literal(name: str) -> str:
    """A registry name (data type key, column) as an SQL string literal."""
    assert name.replace("_", "").isalnum(), name  # registry names only, never user input
    return f"'{name}'"
