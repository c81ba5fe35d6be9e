"""What a transfer does to the data: the impact of a pair, and applying it.

Set-based: per storage table, a DELETE for OVERWRITE types and one UPDATE for
every owner column, whatever the number of records, journaled by the same
statements (models/journal.py). The caller owns the transaction.

An OVERWRITE replaces, it never erases for nothing: the target's records of
an OVERWRITE type are deleted only when the source has records of that type
to put in their place (SPEC.md section 3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from models.counts import owned_counts
from models.fences.tortoise import column_names, model_field, table_name
from models.sql import Statement, is_postgres, literal
from models.tenancy import User
from models.userdata import DATA_TYPES, DataType, Policy, Storage, by_storage


@dataclass(frozen=True)
class Impact:
    data_type: DataType
    moves: int  # source records that will be reassigned to the target
    deletes: int  # target records an OVERWRITE deletes


def chosen(keys: Sequence[str] | None) -> tuple[DataType, ...]:
    """The data types a transfer moves, in registry order: those of `keys`, or every one."""
    if keys is None:
        return DATA_TYPES
    wanted = set(keys)
    return tuple(dt for dt in DATA_TYPES if dt.key in wanted)


def combine(source: dict[str, int], target: dict[str, int], types: Sequence[DataType] = DATA_TYPES) -> list[Impact]:
    """The impact of a pair from what each side owns: every source record of `types`
    moves; an OVERWRITE type the source has also deletes every target record of that type."""
    return [
        Impact(dt, source.get(dt.key, 0), target.get(dt.key, 0) if replaces(dt, source) else 0) for dt in types
    ]


def replaces(dt: DataType, source: dict[str, int]) -> bool:
    """Whether the target's records of `dt` are deleted: OVERWRITE, and the source has some to put in their place."""
    return dt.policy is Policy.OVERWRITE and source.get(dt.key, 0) > 0


async def impact(source_pk: int, target_pk: int, types: Sequence[DataType] = DATA_TYPES) -> list[Impact]:
    """Per data type of `types`, in registry order: records that move, records an OVERWRITE deletes."""
    counts = await owned_counts([source_pk, target_pk])
    return combine(counts[source_pk], counts[target_pk], types)


async def apply_pair(
    source_pk: int,
    target_pk: int,
    db: BaseDBAsyncClient,
    *,
    types: Sequence[DataType] = DATA_TYPES,
    journal_item: int | None = None,
) -> list[Impact]:
    """Move the source's records of `types` onto the target; returns what was moved and deleted.

    Must run inside the caller's transaction (`db`), so that all data types move or
    none. With `journal_item`, the same statements journal what they do under that
    transfer item (models/journal.py), so that a revert can undo it. PostgreSQL does
    a storage table in one statement (data-modifying CTEs, which all see the rows as
    they were before it); SQLite, without those, in a few.
    """
    moves: dict[str, int] = {}
    deletes: dict[str, int] = {}
    apply = _apply_postgres if is_postgres(db) else _apply_sqlite
    for storage, chosen_here in by_storage(types).items():
        await apply(_Move(storage, chosen_here, source_pk, target_pk, journal_item), db, moves, deletes)
    return [Impact(dt, moves.get(dt.key, 0), deletes.get(dt.key, 0)) for dt in types]


@dataclass(frozen=True)
class _Move:
    """One storage table's part of a pair, and the SQL fragments that say it."""

    storage: Storage
    types: list[DataType]
    source: int
    target: int
    journal_item: int | None

    @property
    def overwrite(self) -> list[DataType]:
        return [t for t in self.types if t.policy is Policy.OVERWRITE]

    def type_of_row(self) -> str:
        """The data type of a row, as an SQL expression."""
        if self.storage.type_column:
            return self.storage.type_column
        (only,) = self.types  # a table without a type column holds exactly one data type
        return literal(only.key)

    def owned(self, q: Statement, user: int, types: Sequence[DataType]) -> str:
        """Rows of `types` that `user` owns, in any owner column."""
        cols = self.storage.owner_columns
        who = " OR ".join(f"{c} = {q.p(user)}" for c in cols)
        where = f"({who})" if len(cols) > 1 else who
        if self.storage.type_column:
            where += " AND " + q.isin(self.storage.type_column, [t.key for t in types])
        return where

    def reassign(self, q: Statement) -> str:
        """The SET clause handing every owner column held by the source to the target.

        A record the source owns twice (evaluator and approver) moves, and counts, once."""
        cols = self.storage.owner_columns
        if len(cols) == 1:
            return f"{cols[0]} = {q.p(self.target)}"
        return ", ".join(
            f"{c} = CASE WHEN {c} = {q.p(self.source)} THEN {q.p(self.target)} ELSE {c} END" for c in cols
        )

    def journal_moves(self, q: Statement, moved: str | None = None) -> str:
        """SELECT of the journal rows: per owner column and data type, the IDs of the source's
        records. From `moved` (an UPDATE's RETURNING id, kind) where the table has one owner
        column; otherwise read before they move, one owner column at a time."""
        if moved and len(self.storage.owner_columns) == 1:
            (column,) = self.storage.owner_columns
            item, source = q.integer(self.journal_item), q.integer(self.source)
            return f"SELECT {item}, kind, {literal(column)}, {source}, {q.json_list('id')} FROM {moved} GROUP BY kind"
        parts = []
        for column in self.storage.owner_columns:
            item, source = q.integer(self.journal_item), q.integer(self.source)
            where = f"{column} = {q.p(self.source)}"
            if self.storage.type_column:
                where += " AND " + q.isin(self.storage.type_column, [t.key for t in self.types])
            parts.append(
                f"SELECT {item}, kind, {literal(column)}, {source}, {q.json_list('id')} "
                f"FROM (SELECT id, {self.type_of_row()} AS kind FROM {self.storage.table} WHERE {where}) x GROUP BY kind"
            )
        return " UNION ALL ".join(parts)

    def keep_removed(self, q: Statement, rows: Callable[[Statement], str]) -> str:
        """INSERT of one journal row holding, as they were, the rows `rows` names (aliased r).

        `rows` writes its SQL after the item's placeholder, so that `?` parameters stay in order."""
        item = q.integer(self.journal_item)
        everything = q.json_rows("r", row_columns(self.storage))
        return (
            f"INSERT INTO journal_removed ({_REMOVED_COLUMNS}) "
            f"SELECT {item}, {literal(self.storage.table)}, {everything} FROM {rows(q)} HAVING count(*) > 0"
        )


_JOURNAL_COLUMNS = "item_id, data_type, owner_column, previous_owner_id, record_ids"
_REMOVED_COLUMNS = "item_id, table_name, rows"


def row_columns(storage: Storage) -> list[str]:
    return [model_field(storage.model, f).source_field or f for f in column_names(storage.model)]


async def _apply_postgres(m: _Move, db: BaseDBAsyncClient, moves: dict[str, int], deletes: dict[str, int]) -> None:
    table, kind = m.storage.table, m.type_of_row()
    q = Statement(db)
    parts: list[str] = []
    counts: list[str] = []
    if m.overwrite:
        # The target's rows of an OVERWRITE type go only where the source has that type.
        source_has = (
            f"{kind} IN (SELECT {kind} FROM {table} WHERE {m.owned(q, m.source, m.overwrite)})"
            if m.storage.type_column
            else f"EXISTS (SELECT 1 FROM {table} WHERE {m.owned(q, m.source, m.overwrite)})"
        )
        parts.append(f"gone AS (DELETE FROM {table} WHERE {m.owned(q, m.target, m.overwrite)} AND {source_has} RETURNING *)")
        if m.journal_item is not None:
            parts.append(f"kept AS ({m.keep_removed(q, lambda q: 'gone AS r')})")
        counts.append(f"SELECT 'd', kind, count(*) FROM (SELECT {kind} AS kind FROM gone) g GROUP BY kind")
        if m.storage.unique_owner:
            # A unique owner column sees a row deleted in the same statement as still
            # there: the source's row can take the target's place only in the next one.
            await _tally(q, f"WITH {', '.join(parts)} {counts[0]}", moves, deletes)
            q, parts, counts = Statement(db), [], []
    parts.append(
        f"moved AS (UPDATE {table} SET {m.reassign(q)} WHERE {m.owned(q, m.source, m.types)} RETURNING id, {kind} AS kind)"
    )
    if m.journal_item is not None:
        parts.append(f"noted AS (INSERT INTO journal_move ({_JOURNAL_COLUMNS}) {m.journal_moves(q, 'moved')})")
    counts.append("SELECT 'm', kind, count(*) FROM moved GROUP BY kind")
    await _tally(q, f"WITH {', '.join(parts)} {' UNION ALL '.join(counts)}", moves, deletes)


async def _tally(q: Statement, sql: str, moves: dict[str, int], deletes: dict[str, int]) -> None:
    """Run a statement that answers (m or d, data type, records) and add up its answer."""
    for what, key, n in await q.rows(sql):
        (moves if what == "m" else deletes)[key] = n


async def _apply_sqlite(m: _Move, db: BaseDBAsyncClient, moves: dict[str, int], deletes: dict[str, int]) -> None:
    table, kind = m.storage.table, m.type_of_row()

    async def count(user: int, types: Sequence[DataType]) -> dict[str, int]:
        q = Statement(db)
        return dict(await q.rows(f"SELECT {kind}, count(*) FROM {table} WHERE {m.owned(q, user, types)} GROUP BY {kind}"))

    found = await count(m.source, m.types)
    replaced = [t for t in m.overwrite if found.get(t.key)]
    if replaced:
        deletes.update(await count(m.target, replaced))
        if m.journal_item is not None:
            q = Statement(db)
            await q.run(m.keep_removed(q, lambda q: f"{table} AS r WHERE {m.owned(q, m.target, replaced)}"))
        q = Statement(db)
        await q.run(f"DELETE FROM {table} WHERE {m.owned(q, m.target, replaced)}")
    if found and m.journal_item is not None:
        q = Statement(db)
        await q.run(f"INSERT INTO journal_move ({_JOURNAL_COLUMNS}) {m.journal_moves(q)}")
    if found:
        q = Statement(db)
        await q.run(f"UPDATE {table} SET {m.reassign(q)} WHERE {m.owned(q, m.source, m.types)}")
        moves.update(found)


async def owners(
    user_pks: list[int], db: BaseDBAsyncClient | None = None, types: Sequence[DataType] = DATA_TYPES
) -> set[int]:
    """Which of `user_pks` own at least one record of `types`.

    One statement whatever the number of users (the rules ask this of every source of a
    file at once): per user, an index probe per owner column that stops at the first
    record, so a file of 2,000 sources reads 2,000 index entries, not their 500,000 records.
    """
    if not user_pks:
        return set()
    q = Statement(db or connections.get("default"))
    among = q.isin("u.id", user_pks)  # first: SQLite numbers its placeholders in the text's order
    probes = []
    for storage, here in by_storage(types).items():
        kinds = f" AND {q.isin(f'r.{storage.type_column}', [t.key for t in here])}" if storage.type_column else ""
        probes += [
            f"EXISTS (SELECT 1 FROM {storage.table} r WHERE r.{column} = u.id{kinds})" for column in storage.owner_columns
        ]
    found = await q.rows(f"SELECT u.id FROM {table_name(User)} u WHERE {among} AND ({' OR '.join(probes)})")
    return {pk for (pk,) in found}
