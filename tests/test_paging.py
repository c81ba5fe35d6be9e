"""Paging follows the Relay specification on every connection (users, transfers, an upload's
rows, a transfer's items): a negative `first` is refused with INVALID_PAGE_SIZE; `after`
takes only a cursor that this same connection gave, anything else is INVALID_CURSOR; and
following endCursor while hasNextPage reads every item once."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from graph.core.relay import to_global_id
from models.transfers import ItemStatus, Transfer, TransferItem, TransferKind, TransferStatus
from tests.support import LEGACY_WS, TRANSPORT_WS, Api, GraphQLErrors, World

PAGE = "totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { %s } }"


@dataclass
class Connection:
    """One connection of the schema: a query selecting a page of it, and where the page is."""

    name: str
    query: str  # takes $first and $after (and $id when the connection hangs off an object)
    path: tuple[str, ...]
    variables: dict[str, Any] = field(default_factory=dict)

    async def page(self, api: Api, token: str, protocol: str | None = None, **arguments: Any) -> dict:
        found = await api.via(protocol, self.query, token, **self.variables, **arguments)
        for key in self.path:
            found = found[key]
        return found


def users() -> Connection:
    return Connection("users", "query ($first: Int, $after: String) { users(first: $first, after: $after) { %s } }" % (PAGE % "userId"), ("users",))


def transfers() -> Connection:
    query = "query ($first: Int, $after: String) { transfers(first: $first, after: $after) { %s } }" % (PAGE % "id")
    return Connection("transfers", query, ("transfers",))


def items(transfer_id: str) -> Connection:
    query = "query ($id: ID!, $first: Int, $after: String) { transfer(id: $id) { items(first: $first, after: $after) { %s } } }"
    return Connection("items", query % (PAGE % "sourceUser { userId }"), ("transfer", "items"), {"id": transfer_id})


def rows(upload_id: str) -> Connection:
    query = "query ($id: ID!, $first: Int, $after: String) { bulkUpload(id: $id) { rows(first: $first, after: $after) { %s } } }"
    return Connection("rows", query % (PAGE % "rowNumber"), ("bulkUpload", "rows"), {"id": upload_id})


async def bulk_transfer(world: World, sources: range) -> str:
    """A finished bulk transfer of `sources` onto users 30 on, written directly: only its pages matter here."""
    transfer = await Transfer.create(
        tenant=world.tenant, kind=TransferKind.BULK, status=TransferStatus.SUCCEEDED, requested_by=world.users[1], total_pairs=len(sources)
    )
    await TransferItem.bulk_create(
        [
            TransferItem(transfer=transfer, position=i, source=world.users[s], target=world.users[30 + i], status=ItemStatus.SUCCEEDED)
            for i, s in enumerate(sources)
        ]
    )
    return to_global_id("Transfer", transfer.id)


async def upload(api: Api, world: World, sources: range) -> str:
    content = "From User ID,To User ID\n" + "".join(f"{s},{s + 10}\n" for s in sources)
    return (await api.upload(world.admin, content))["upload"]["id"]


@pytest.fixture
async def every_connection(api: Api, world: World) -> list[Connection]:
    """Each connection with more than a page of two: 39 users, 3 transfers of 7 and 3 pairs, an upload of 5 rows."""
    first = await bulk_transfer(world, range(10, 17))
    await bulk_transfer(world, range(17, 20))
    await bulk_transfer(world, range(20, 22))
    return [users(), transfers(), items(first), rows(await upload(api, world, range(10, 15)))]


async def refused(connection: Connection, api: Api, world: World, protocol: str | None = None, **arguments: Any) -> str:
    with pytest.raises(GraphQLErrors) as caught:
        await connection.page(api, world.admin, protocol, **arguments)
    (error,) = caught.value.errors
    return error["extensions"]["code"]


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_following_end_cursor_reads_every_item_of_every_connection_once(api: Api, world: World, every_connection: list[Connection]) -> None:
    for connection in every_connection:
        whole = await connection.page(api, world.admin, first=100)
        assert whole["totalCount"] == len(whole["edges"]) > 2, connection.name
        seen, after, pages = [], None, 0
        while True:
            page = await connection.page(api, world.admin, first=2, after=after)
            assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
            seen += page["edges"]
            pages += 1
            if not page["pageInfo"]["hasNextPage"]:
                break
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
            after = page["pageInfo"]["endCursor"]
        assert seen == whole["edges"], connection.name  # the same items and cursors, in order, once each
        assert pages == (len(seen) + 1) // 2


async def test_a_negative_first_is_refused_and_zero_is_an_empty_page(api: Api, world: World, every_connection: list[Connection]) -> None:
    for connection in every_connection:
        assert await refused(connection, api, world, first=-1) == "INVALID_PAGE_SIZE", connection.name
        empty = await connection.page(api, world.admin, first=0)
        assert empty["edges"] == [] and empty["pageInfo"]["endCursor"] is None
    literal = "{ users(first: -5) { totalCount } }"
    with pytest.raises(GraphQLErrors) as caught:
        await api(literal, world.admin)
    assert caught.value.codes == ["INVALID_PAGE_SIZE"]


async def test_a_cursor_that_this_connection_did_not_give_is_an_invalid_cursor(
    api: Api, world: World, every_connection: list[Connection]
) -> None:
    cursors = {c.name: (await c.page(api, world.admin, first=1))["edges"][0]["cursor"] for c in every_connection}
    other_transfer = await bulk_transfer(world, range(22, 25))
    other_upload = await upload(api, world, range(10, 13))
    of_another_parent = {
        "items": (await items(other_transfer).page(api, world.admin, first=1))["edges"][0]["cursor"],
        "rows": (await rows(other_upload).page(api, world.admin, first=1))["edges"][0]["cursor"],
    }
    for connection in every_connection:
        own = cursors[connection.name]
        scope = base64.urlsafe_b64decode(own).decode().rpartition(":")[0]
        assert (await connection.page(api, world.admin, first=1, after=own))["pageInfo"]["hasPreviousPage"] is True
        bad = [
            "garbage",
            "",
            other_transfer,  # a global ID
            b64(f"{scope}:-5"),
            b64(f"{scope}:0_1"),
            b64(f"{scope}:99999999999999999999"),
            own.rstrip("=") if own.endswith("=") else own + "==",  # padded otherwise than the server pads
            own + "\u200b",
            b64("c:2"),  # an earlier cursor encoding, bound to no connection
            *(cursor for name, cursor in cursors.items() if name != connection.name),
        ]
        if connection.name in of_another_parent:
            bad.append(of_another_parent[connection.name])  # the same connection of another upload or transfer
        for cursor in bad:
            assert await refused(connection, api, world, first=2, after=cursor) == "INVALID_CURSOR", (connection.name, cursor)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_paging_refusals_are_the_same_over_either_websocket_protocol(api: Api, world: World, protocol: str) -> None:
    connection = users()
    own = (await connection.page(api, world.admin, protocol, first=1))["edges"][0]["cursor"]
    assert [e["node"]["userId"] for e in (await connection.page(api, world.admin, protocol, first=2, after=own))["edges"]] == [2, 3]
    assert await refused(connection, api, world, protocol, first=-1) == "INVALID_PAGE_SIZE"
    assert await refused(connection, api, world, protocol, first=2, after="garbage") == "INVALID_CURSOR"


def test_cursors_keep_the_spelling_clients_already_hold() -> None:
    """One codec writes every cursor, in the spelling clients hold from before: `<connection>:<key>`
    for a page, `TransferEvent:<transfer>:<event>[:snapshot]` for a transfer's events, base64url."""
    from graph.api.transfer_events import event_cursor
    from graph.core.relay import decode_cursor, encode_cursor

    def spelled(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode()

    assert encode_cursor("users", 19) == spelled("users:19")
    assert encode_cursor("items.7", 3) == spelled("items.7:3")
    assert event_cursor(7, 3) == spelled("TransferEvent:7:3")
    assert event_cursor(7, 3, snapshot=True) == spelled("TransferEvent:7:3:snapshot")
    assert decode_cursor("users", spelled("users:19")) == 19
    assert decode_cursor("TransferEvent:7", spelled("TransferEvent:7:3:snapshot"), ("", "snapshot")) == 3
    for refused in (spelled("users:19:snapshot"), spelled("users:-1"), spelled("users: 19"), spelled("rows.1:19"), "users:19"):
        assert decode_cursor("users", refused) is None
    assert decode_cursor("TransferEvent:7", spelled("TransferEvent:7:3"), highest=2) is None
