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
from tortoise.models import Model

from models.fences.tortoise import column_names


def is_postgres(db: BaseDBAsyncClient) -> bool:
    return db.capabilities.dialect == "postgres"


_CHANGES = {"UPDATE", "DELETE", "INSERT"}


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

    # JSON is how both databases keep a set of IDs or whole rows in one journal row.

    def json_list(self, expression: str) -> str:
        """Aggregate: the values of `expression` as a JSON array."""
        return f"jsonb_agg({expression})" if self.postgres else f"json_group_array({expression})"

    def json_rows(self, alias: str, columns: Sequence[str]) -> str:
        """Aggregate: the rows of `alias` as a JSON array of objects, one key per column."""
        if self.postgres:
            return f"jsonb_agg(to_jsonb({alias}))"
        return "json_group_array(json_object(" + ", ".join(f"'{c}', {alias}.{c}" for c in columns) + "))"

    def each_id(self, array: str, alias: str) -> tuple[str, str]:
        """A FROM item with a row per element of the JSON array of IDs `array`, and that ID."""
        if self.postgres:
            return f"jsonb_array_elements_text({array}) AS {alias}(value)", f"CAST({alias}.value AS BIGINT)"
        return f"json_each({array}) AS {alias}", f"{alias}.value"

    def each_row(self, array: str, alias: str, table: str, columns: Sequence[str]) -> tuple[str, list[str]]:
        """A FROM item with a row of `table` per object of the JSON array `array`, and its columns."""
        if self.postgres:
            return f"jsonb_populate_recordset(NULL::{table}, {array}) AS {alias}", [f"{alias}.{c}" for c in columns]
        return f"json_each({array}) AS {alias}", [f"json_extract({alias}.value, '$.{c}')" for c in columns]

    async def rows(self, sql: str) -> list[tuple]:
        if sql.lstrip()[:6].upper() in _CHANGES:  # tortoise's execute_query drops what these return
            return [tuple(row.values()) for row in await self.dicts(sql)]
        _, found = await self.db.execute_query(sql, self.values)
        return [tuple(row) for row in found]  # without a dict per row: a page of 1,000 rows is read often

    async def dicts(self, sql: str) -> list[dict]:
        """The rows a statement answers (an UPDATE ... RETURNING too), as {column: value}."""
        return await self.db.execute_query_dict(sql, self.values)

    async def run(self, sql: str) -> int:
        """Run a data-changing statement; returns the rows it changed."""
        changed, _ = await self.db.execute_query(sql, self.values)
        return changed


def columns(model: type[Model], alias: str) -> str:
    """Every column of `model`'s table under `alias`, named `<alias>__<column>` (see `prefixed`)."""
    return ", ".join(f'{alias}."{c}" AS "{alias}__{c}"' for c in column_names(model))


def prefixed(row: dict, alias: str) -> dict:
    """The columns of one table out of a row that `columns` named."""
    start = f"{alias}__"
    return {key[len(start):]: value for key, value in row.items() if key.startswith(start)}


def literal(name: str) -> str:
    """A registry name (data type key, column) as an SQL string literal."""
    assert name.replace("_", "").isalnum(), name  # registry names only, never user input
    return f"'{name}'"
