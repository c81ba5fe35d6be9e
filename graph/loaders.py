"""Dataloaders: one query per kind of nested field per request, not one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from strawberry.dataloader import DataLoader

from models import counts
from models.tenancy import Team, TeamMember, User, ViewTeam, in_scope
from models.transfers import ItemStatus, TransferItem


async def _teams_of_users(pks: list[int]) -> list[list[Team]]:
    teams: dict[int, list[Team]] = defaultdict(list)
    for m in await TeamMember.filter(user_id__in=pks).select_related("team").order_by("team__name"):
        teams[m.user_id].append(m.team)
    return [teams[pk] for pk in pks]


async def _teams_of_views(pks: list[int]) -> list[list[Team]]:
    teams: dict[int, list[Team]] = defaultdict(list)
    for vt in await ViewTeam.filter(view_id__in=pks).select_related("team").order_by("team__name"):
        teams[vt.view_id].append(vt.team)
    return [teams[pk] for pk in pks]


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


class Loaders:
    def __init__(self, operator: Callable[[], Awaitable[User | None]]) -> None:
        self._operator = operator
        self.user = DataLoader(self._users)
        self.in_scope = DataLoader(self._in_scope)
        self.teams_of_user = DataLoader(_teams_of_users)
        self.teams_of_view = DataLoader(_teams_of_views)
        self.owned = DataLoader(_owned)
        self.failed_user_ids = DataLoader(_failed_user_ids)

    async def _users(self, pks: list[int]) -> list[User | None]:
        """Users of the operator's tenant by primary key; whether they may be shown is `in_scope`'s call."""
        operator = await self._operator()
        tenant = operator.tenant_id if operator else -1
        found = {u.id: u for u in await User.filter(id__in=pks, tenant_id=tenant)}
        return [found.get(pk) for pk in pks]

    async def _in_scope(self, pks: list[int]) -> list[bool]:
        operator = await self._operator()
        seen = await in_scope(operator, pks) if operator else set()
        return [pk in seen for pk in pks]
