"""The CSV files the service writes: the people file and transfer audit logs.

Each is an async generator of CSV text, a page of rows at a time, so a
tenant of any size streams in constant memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tortoise import connections

from models.csvfile import PEOPLE_HEADER, write_rows
from models.sql import Statement
from models.tenancy import User, in_scope, scope_condition
from models.transfers import ItemStatus, Transfer, TransferItem, TransferKind
from models.userdata import DATA_TYPES, Policy

PAGE = 1000


async def people_csv(operator: User) -> AsyncIterator[str]:
    """Every user in the operator's scope, active and inactive, by User ID (SPEC.md 6.1).

    A page of users at a time; the next page is read while this one is written out.
    """
    yield write_rows([PEOPLE_HEADER])
    page = await _people_page(operator, 0)
    while page:
        following = asyncio.ensure_future(_people_page(operator, page[-1][0]))
        try:
            yield write_rows(page)
            page = await following
        finally:
            following.cancel()  # the download stopped half way: no page is read for nobody


async def _people_page(operator: User, after: int) -> list[tuple]:
    """The next page of the operator's scope after User ID `after`: its rows of the file, cell by cell.

    One statement that writes the cells, team names included: through the ORM, turning each
    value into Python and the teams into lists was most of the file's time (benchmarks/RESULTS.md).
    """
    q = Statement(connections.get("default"))
    names = "SELECT t.name FROM team_member m JOIN team t ON t.id = m.team_id WHERE m.user_id = u.id ORDER BY t.name"
    # SQLite's group_concat takes no ORDER BY before 3.44: it joins an ordered subquery's rows in that order.
    teams = "string_agg(name, '; ' ORDER BY name)" if q.postgres else "group_concat(name, '; ')"
    return await q.rows(
        "SELECT u.user_id, '' AS to_user_id, u.first_name, u.last_name, u.username, u.email, "
        "CASE WHEN u.active THEN 'Active' ELSE 'Inactive' END AS status, "
        "CASE WHEN u.tenant_admin THEN 'Yes' ELSE 'No' END AS admin, "
        f"COALESCE((SELECT {teams} FROM ({names}) AS n), '') AS teams "
        f"FROM app_user u WHERE {scope_condition(operator, q, 'u')} AND u.user_id > {q.p(after)} "
        f"ORDER BY u.user_id LIMIT {PAGE}"
    )


AUDIT_HEADER = [
    "Line Number",
    "Source User ID",
    "Source Name",
    "Target User ID",
    "Target Name",
    "Status",
    "Code",
    "Message",
    "Time",
]
_OVERWRITE_TYPES = [dt for dt in DATA_TYPES if dt.policy is Policy.OVERWRITE]


async def audit_csv(operator: User, transfer: Transfer, *, every_pair: bool) -> AsyncIterator[str]:
    """The failed pairs of a transfer; with `every_pair`, every pair and its records per data type.

    A user outside the operator's scope is written by User ID only, without a name.
    """
    extra = (
        ["Records Moved", "Records Overwritten"]
        + [f"{dt.key} moved" for dt in DATA_TYPES]
        + [f"{dt.key} overwritten" for dt in _OVERWRITE_TYPES]
        if every_pair
        else []
    )
    # The transfer's choice of data types ends every row, after the columns that came before it;
    # a revert's pairs also say what they put back and what they left where it was.
    extra.append("Data Types")
    choice = "All" if transfer.data_types is None else "; ".join(transfer.data_types)
    undoing = every_pair and transfer.kind is TransferKind.REVERT
    if undoing:
        extra += ["Records Restored", "Records Skipped"]
    yield write_rows([AUDIT_HEADER + extra])
    query = TransferItem.filter(transfer_id=transfer.id)
    if not every_pair:
        query = query.filter(status=ItemStatus.FAILED)
    last = -1
    while True:
        items = await query.filter(position__gt=last).order_by("position").limit(PAGE).select_related("source", "target")
        if not items:
            return
        seen = await in_scope(operator, {pk for item in items for pk in (item.source_id, item.target_id)})
        yield write_rows(
            [*_audit_row(item, every_pair, seen), choice, *(_undone(item) if undoing else ())] for item in items
        )
        last = items[-1].position


def _undone(item: TransferItem) -> list[int]:
    return [sum(item.restored.values()), sum(item.skipped.values())]


def _audit_row(item: TransferItem, every_pair: bool, seen: set[int]) -> list[object]:
    row: list[object] = [
        item.row_number if item.row_number is not None else "",
        item.source.user_id,
        item.source.display_name if item.source_id in seen else "",
        item.target.user_id,
        item.target.display_name if item.target_id in seen else "",
        ItemStatus(item.status).value,
        item.error_code or "",
        # A message names the pair's users: only when the operator may see both.
        (item.error_message or "") if {item.source_id, item.target_id} <= seen else "",
        item.finished_at.isoformat() if item.finished_at else "",
    ]
    if every_pair:
        row += [sum(item.moved.values()), sum(item.overwritten.values())]
        row += [item.moved.get(dt.key, 0) for dt in DATA_TYPES]
        row += [item.overwritten.get(dt.key, 0) for dt in _OVERWRITE_TYPES]
    return row
