"""Dataloaders: one query per kind of nested field per request, not one per row."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry.dataloader import DataLoader

from models import counts
from models.tenancy import TeamRow, User, in_scope, teams_of
from models.transfers import ItemStatus, Transfer, TransferItem, visible_transfers

T = TypeVar("T")
R = TypeVar("R")


def now_or_later(loaded: Awaitable[T], then: Callable[[T], R]) -> R | Awaitable[R]:
    """`then(value)` at once when the loader holds the value already (a page loaded it for all its
    users), else an awaitable of it. For resolvers that are plain functions: a value given at once
    is completed without a task of its own (a page of users would make several per user)."""
    if isinstance(loaded, asyncio.Future) and loaded.done():
        return then(loaded.result())

    async def later() -> R:
        return then(await loaded)

    return later()


async def _teams_of_users(pks: list[int]) -> list[list[TeamRow]]:
    teams = await teams_of("user", pks)
    return [teams.get(pk, []) for pk in pks]


async def _teams_of_views(pks: list[int]) -> list[list[TeamRow]]:
    teams = await teams_of("view", pks)
    return [teams.get(pk, []) for pk in pks]


async def _owned(pks: list[int]) -> list[dict[str, int]]:
    owned = await counts.owned_counts(pks)
    return [owned[pk] for pk in pks]


async def _failed_user_ids(pks: list[int]) -> list[list[int]]:
    failed: dict[int, list[int]] = defaultdict(list)
    rows = (
        await TransferItem.filter(transfer_id__in=pks, status=ItemStatus.FAILED)
        .order_by("transfer_id", "position")
        .values_list("transfer_id", "source__user_id", "target__user_id")
    )
    for transfer_id, source, target in rows:
        failed[transfer_id] += [uid for uid in (source, target) if uid not in failed[transfer_id]]
    return [failed[pk] for pk in pks]


async def _reverts(pks: list[int]) -> list[int | None]:
    """The revert of each transfer, if it has one (by primary key)."""
    found = dict(await Transfer.filter(revert_of_id__in=pks).values_list("revert_of_id", "id"))
    return [found.get(pk) for pk in pks]


class Loaders:
    def __init__(self, operator: Callable[[], Awaitable[User | None]]) -> None:
        self._operator = operator
        self.user = DataLoader(self._users)
        self.in_scope = DataLoader(self._in_scope)
        self.teams_of_user = DataLoader(_teams_of_users)
        self.teams_of_view = DataLoader(_teams_of_views)
        self.owned = DataLoader(_owned)
        self.failed_user_ids = DataLoader(_failed_user_ids)
        self.transfer = DataLoader(self._transfers)
        self.revert_of = DataLoader(_reverts)

    async def _users(self, pks: list[int]) -> list[User | None]:
        """Users of the operator's tenant by primary key; whether they may be shown is `in_scope`'s call."""
        operator = await self._operator()
        tenant = operator.tenant_id if operator else -1
        found = {u.id: u for u in await User.filter(id__in=pks, tenant_id=tenant)}
        return [found.get(pk) for pk in pks]

    async def _transfers(self, pks: list[int]) -> list[Transfer | None]:
        """Transfers by primary key, those the operator may see; None for the rest."""
        operator = await self._operator()
        found = {t.id: t for t in await visible_transfers(operator).filter(id__in=pks)} if operator else {}
        return [found.get(pk) for pk in pks]

    async def _in_scope(self, pks: list[int]) -> list[bool]:
        operator = await self._operator()
        seen = await in_scope(operator, pks) if operator else set()
        return [pk in seen for pk in pks]
