"""What a transfer does to the data: the impact of a pair, and applying it.

Set-based: per storage table, one grouped count, one DELETE for OVERWRITE
types and one UPDATE per owner column, whatever the number of records. The
caller owns the transaction.

An OVERWRITE replaces, it never erases for nothing: the target's records of
an OVERWRITE type are deleted only when the source has records of that type
to put in their place (SPEC.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Case, F, Q, Value, When
from tortoise.functions import Count

from models.userdata import DATA_TYPES, DataType, Policy, Storage, storages


@dataclass(frozen=True)
class Impact:
    data_type: DataType
    moves: int  # source records that will be reassigned to the target
    deletes: int  # target records an OVERWRITE deletes


def _owned_by(storage: Storage, user_pk: int) -> Q:
    return Q(*(Q(**{col: user_pk}) for col in storage.owner_columns), join_type="OR")


async def _counts(storage: Storage, types: list[DataType], user_pk: int, db: BaseDBAsyncClient | None) -> dict[str, int]:
    """Records of each of `types` owned by `user_pk` in `storage`."""
    query = storage.model.filter(_owned_by(storage, user_pk)).using_db(db)
    if storage.type_column is None:
        (only,) = types  # a table without a type column holds exactly one data type
        return {only.key: await query.count()}
    rows = (
        await query.filter(**{f"{storage.type_column}__in": [t.key for t in types]})
        .annotate(n=Count("id"))
        .group_by(storage.type_column)
        .values(storage.type_column, "n")
    )
    return {row[storage.type_column]: row["n"] for row in rows}


def combine(source: dict[str, int], target: dict[str, int]) -> list[Impact]:
    """The impact of a pair from what each side owns: every source record moves; an
    OVERWRITE type the source has also deletes every target record of that type."""
    return [
        Impact(dt, source.get(dt.key, 0), target.get(dt.key, 0) if replaces(dt, source) else 0)
        for dt in DATA_TYPES
    ]


def replaces(dt: DataType, source: dict[str, int]) -> bool:
    """Whether the target's records of `dt` are deleted: OVERWRITE, and the source has some to put in their place."""
    return dt.policy is Policy.OVERWRITE and source.get(dt.key, 0) > 0


async def impact(source_pk: int, target_pk: int) -> list[Impact]:
    """Per data type, in registry order: records that move, records an OVERWRITE deletes."""
    counts = await owned_counts([source_pk, target_pk])
    return combine(counts[source_pk], counts[target_pk])


async def apply_pair(source_pk: int, target_pk: int, db: BaseDBAsyncClient) -> list[Impact]:
    """Move every record of the source onto the target; returns what was moved and deleted.

    Must run inside the caller's transaction (`db`), so that all data types move or none.
    A table holding one data type is counted by its DELETE and UPDATE themselves (an
    OVERWRITE one asks first whether the source has a record); a shared table needs
    one grouped count per side to tell its types apart, and the source's count says
    which OVERWRITE types replace the target's.
    """
    moves: dict[str, int] = {}
    deletes: dict[str, int] = {}
    for storage, types in storages().items():
        if storage.type_column is None:
            (only,) = types  # a table without a type column holds exactly one data type
            if only.policy is Policy.OVERWRITE and await storage.model.filter(
                _owned_by(storage, source_pk)
            ).using_db(db).exists():
                deletes[only.key] = await storage.model.filter(_owned_by(storage, target_pk)).using_db(db).delete()
            moves[only.key] = await _reassign(storage, source_pk, target_pk, db)
            continue
        moves |= await _counts(storage, types, source_pk, db)
        overwrite = [t for t in types if replaces(t, moves)]
        if overwrite:
            deletes |= await _counts(storage, overwrite, target_pk, db)
            keys = {f"{storage.type_column}__in": [t.key for t in overwrite]}
            await storage.model.filter(_owned_by(storage, target_pk), **keys).using_db(db).delete()
        await _reassign(storage, source_pk, target_pk, db, **{f"{storage.type_column}__in": [t.key for t in types]})
    return [Impact(dt, moves.get(dt.key, 0), deletes.get(dt.key, 0)) for dt in DATA_TYPES]


async def _reassign(storage: Storage, source_pk: int, target_pk: int, db: BaseDBAsyncClient, **where: object) -> int:
    """One UPDATE handing every owner column held by the source to the target; returns rows touched."""
    query = storage.model.filter(_owned_by(storage, source_pk), **where).using_db(db)
    if len(storage.owner_columns) == 1:
        (column,) = storage.owner_columns
        return await query.update(**{column: target_pk})
    # A record the source owns twice (evaluator and approver) moves, and counts, once.
    return await query.update(
        **{
            column: Case(When(**{column: source_pk}, then=Value(target_pk)), default=F(column))
            for column in storage.owner_columns
        }
    )


async def owned_counts(user_pks: list[int]) -> dict[int, dict[str, int]]:
    """Records owned now, per user and data type, for many users at once.

    A constant number of queries (a few per storage table) whatever the number
    of users: the users page asks this once per page, through a dataloader.
    """
    counts: dict[int, dict[str, int]] = {pk: {} for pk in user_pks}

    def add(pk: int, key: str, n: int) -> None:
        counts[pk][key] = counts[pk].get(key, 0) + n

    for storage, types in storages().items():
        for column in storage.owner_columns:
            query = storage.model.filter(**{f"{column}__in": user_pks})
            if storage.type_column:
                rows = await query.annotate(n=Count("id")).group_by(column, storage.type_column).values(
                    column, storage.type_column, "n"
                )
                for row in rows:
                    add(row[column], row[storage.type_column], row["n"])
            else:
                (only,) = types
                for row in await query.annotate(n=Count("id")).group_by(column).values(column, "n"):
                    add(row[column], only.key, row["n"])
        if len(storage.owner_columns) > 1 and storage.type_column is None:
            # A record owned twice by the same user (evaluator == approver) counts once.
            first, *others = storage.owner_columns
            (only,) = types
            same = storage.model.filter(**{f"{first}__in": user_pks}, **{o: F(first) for o in others})
            for row in await same.annotate(n=Count("id")).group_by(first).values(first, "n"):
                add(row[first], only.key, -row["n"])
    return counts


async def owners(user_pks: list[int], db: BaseDBAsyncClient | None = None) -> set[int]:
    """Which of `user_pks` own at least one record of any data type.

    One query per owner column, whatever the number of users (the rules ask this of
    every source of a file at once); cheaper than counting, since it only needs to know.
    """
    found: set[int] = set()
    for storage in storages():
        for column in storage.owner_columns:
            query = storage.model.filter(**{f"{column}__in": user_pks}).using_db(db)
            found.update(await query.distinct().values_list(column, flat=True))
    return found
