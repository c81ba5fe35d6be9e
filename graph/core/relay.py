"""Relay plumbing: global IDs (spelled by models/global_ids.py), the Node interface, the one cursor codec, and the generic connection (PageInfo, pages)."""

from __future__ import annotations

import base64
import binascii
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import strawberry

from graph.core.errors import ClientError
from graph.fences.strawberry import SelectedField, Selection
from models import settings
from models.db import MAX_INT
from models.global_ids import to_global_id


def from_global_id(global_id: str, expected: str | None = None) -> tuple[str, int] | None:
    """(type, pk) of exactly what to_global_id writes; anything else (padding, spaces,
    other digits, stray characters) is None and behaves as an unknown ID."""
    try:
        type_name, _, pk = base64.urlsafe_b64decode(global_id.encode("ascii")).decode("ascii").partition(":")
        result = (type_name, int(pk))
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if to_global_id(*result) != global_id:  # the one canonical spelling of the pair
        return None
    if expected is not None and type_name != expected:
        return None
    if not 0 <= result[1] <= MAX_INT:
        return None
    return result


def pk_of(global_id: str, expected: str) -> int | None:
    found = from_global_id(global_id, expected)
    return found[1] if found else None


FIRST = (
    "Page size: 50 if not given, at most the server's cap (UDT_MAX_PAGE_SIZE, 100 unless set); "
    "negative is refused (INVALID_PAGE_SIZE)."
)
AFTER = (
    "The cursor after which the page starts (an edge's cursor or pageInfo.endCursor of this same "
    "connection; any other is refused: INVALID_CURSOR)."
)


@strawberry.interface(description="An object with a global ID, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Global ID: opaque, stable, unique across types.")


@strawberry.type(description="Where a page is (Relay): pass endCursor as `after` for the next one.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="This page started after a cursor.")
    start_cursor: str | None = strawberry.field(description="The cursor of the page's first item.")
    end_cursor: str | None = strawberry.field(description="The cursor of the page's last item.")


def encode_cursor(connection: str, value: int, mark: str = "") -> str:
    """Every cursor the API writes: opaque, and bound to its connection (`users`, `items.<transfer>`,
    `TransferEvent:<transfer>`, ...), so that a cursor of another connection, or an object's global
    ID, is refused rather than misread. `mark` tells apart two cursors of one value."""
    text = f"{connection}:{value}:{mark}" if mark else f"{connection}:{value}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(connection: str, cursor: str, marks: tuple[str, ...] = ("",), highest: int = MAX_INT) -> int | None:
    """The value behind a cursor of `connection` (0 to `highest`, with one of `marks`); None for anything
    that is not exactly such a cursor, in the one spelling encode_cursor writes."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        value, _, mark = text.removeprefix(f"{connection}:").partition(":")
        found = int(value)
    except (binascii.Error, UnicodeError, ValueError):
        return None
    exact = encode_cursor(connection, found, mark) == cursor  # which also means it names `connection`
    return found if exact and mark in marks and 0 <= found <= highest else None


def page_size(first: int | None) -> int:
    """Rows to return: `first`, capped at the server's page size; negative is refused (Relay)."""
    if first is not None and first < 0:
        raise ClientError("INVALID_PAGE_SIZE", "`first` must not be negative.")
    return min(first if first is not None else 50, settings.MAX_PAGE_SIZE)


def page_info(connection: str, keys: list[int], has_next: bool, has_previous: bool) -> PageInfo:
    cursors = [encode_cursor(connection, k) for k in keys]
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def node_fields(info: strawberry.Info) -> set[str]:
    """The fields a query selects on a connection's `edges { node { ... } }`, through fragments
    (directives are not weighed): what is worth loading for a whole page at once."""

    def names(selections: list[Selection], path: tuple[str, ...]) -> set[str]:
        found: set[str] = set()
        for selection in selections:
            if not isinstance(selection, SelectedField):
                found |= names(selection.selections, path)
            elif not path:
                found.add(selection.name)
            elif selection.name == path[0]:
                found |= names(selection.selections, path[1:])
        return found

    return names([s for field in info.selected_fields for s in field.selections], ("edges", "node"))


async def paginate(
    query: Any, connection: str, key: str, first: int | None, after: str | None, descending: bool = False
) -> tuple[list[Any], bool, bool]:
    """Keyset pagination on a unique integer column: (rows, has_next, has_previous), reading
    `first` + 1 rows at most. `first` and `after` are checked before anything is read."""
    size = page_size(first)
    start = None if after is None else decode_cursor(connection, after)
    if after is not None and start is None:
        raise ClientError("INVALID_CURSOR", "`after` is not a cursor of this connection.")
    if start is not None:
        query = query.filter(**{f"{key}__lt" if descending else f"{key}__gt": start})
    rows: Sequence = await query.order_by(f"-{key}" if descending else key).limit(size + 1)
    return list(rows[:size]), len(rows) > size, start is not None


class Connection:
    """A page of a Relay connection: `edges`, `pageInfo`, `totalCount` (the types `connection_of` makes)."""

    edge: ClassVar[type]
    matching: Any  # the query of every page, counted only when `totalCount` is asked for

    @classmethod
    async def page(
        cls,
        query: Any,
        connection: str,
        key: str,
        first: int | None,
        after: str | None,
        nodes: Callable[[list[Any]], list[Any] | Awaitable[list[Any]]],
        descending: bool = False,
    ) -> Any:
        """The page of `query` that `first` and `after` ask for, keyed by the unique integer column `key`;
        `nodes` makes the page's rows into its nodes (all at once, so a page's data loads once)."""
        rows, has_next, has_prev = await paginate(query, connection, key, first, after, descending)
        built = nodes(rows)
        if inspect.isawaitable(built):
            built = await built
        keys = [getattr(r, key) for r in rows]
        return cls(
            edges=[cls.edge(node=n, cursor=encode_cursor(connection, k)) for n, k in zip(built, keys, strict=True)],
            page_info=page_info(connection, keys, has_next, has_prev),
            matching=query,
        )


async def _total_count(self: Connection) -> int:
    """A count of the whole match: a query of its own, so made only for a request that selects it."""
    return await self.matching.count()


def connection_of(node: type, item: str, items: str, whose: str | None = None, order: str = "") -> type[Connection]:
    """The Relay connection of `node` and its edge (`<Node>Connection`, `<Node>Edge`), described in words:
    a page of `whose` (e.g. "a transfer's pairs"; `items` unless given), `order` as it is listed."""
    whose = whose or items
    edge = strawberry.type(
        type(f"{node.__name__}Edge", (), {
            "__annotations__": {"node": node, "cursor": str},
            "node": strawberry.field(description=f"The {item}."),
            "cursor": strawberry.field(description=f"Pass as `after` for the {items} after this one."),
        }),
        description=f"A {item} in a page of {whose}.",
    )
    page = strawberry.type(
        type(f"{node.__name__}Connection", (Connection,), {
            "__annotations__": {"edges": list[edge], "page_info": PageInfo, "matching": strawberry.Private[Any]},
            "edges": strawberry.field(description=f"The {items} of this page."),
            "page_info": strawberry.field(description="Where this page is, and whether more follow."),
            "total_count": strawberry.field(
                resolver=_total_count, description=f"{items.capitalize()} matching, over all pages."
            ),
        }),
        description=f"A page of {whose}{order} (Relay connection).",
    )
    page.edge = edge
    return page
