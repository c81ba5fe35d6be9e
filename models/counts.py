"""Records owned now, per user and data type, for a page of users: one statement.

The users page asks this once per page (through a dataloader). One grouped
SELECT per storage table and owner column, joined by UNION ALL, makes it one
round trip whatever the number of tables; its SQL is written here rather than
built by the ORM, whose work per query outweighed the database's.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from models.sql import Statement, literal
from models.userdata import DATA_TYPES, by_storage


async def owned_counts(user_pks: Sequence[int], db: BaseDBAsyncClient | None = None) -> dict[int, dict[str, int]]:
    """{user pk: {data type key: records}} for every pk asked (types with none are left out)."""
    counts: dict[int, dict[str, int]] = {pk: {} for pk in user_pks}
    if not counts:
        return counts
    statement = Statement(db or connections.get("default"))
    parts = []
    for storage, types in by_storage(DATA_TYPES).items():
        for i, column in enumerate(storage.owner_columns):
            kind = storage.type_column or literal(types[0].key)  # a storage without a type column holds one type
            where = [statement.isin(column, list(counts))]
            # A record owned twice by the same user (evaluator == approver) counts once: for the first column.
            where += [f"({earlier} IS NULL OR {earlier} <> {column})" for earlier in storage.owner_columns[:i]]
            parts.append(
                f"SELECT {column}, {kind}, COUNT(*) FROM {storage.table} WHERE {' AND '.join(where)}"
                f" GROUP BY {column}{', ' + kind if storage.type_column else ''}"
            )
    for pk, key, n in await statement.rows(" UNION ALL ".join(parts)):
        counts[pk][key] = counts[pk].get(key, 0) + n
    return counts
