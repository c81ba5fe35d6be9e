"""The transferEvents subscription: a SNAPSHOT, then live events until the terminal one.

The snapshot comes from the database and the events from the transfer's Redis
stream, read from a position noted *before* the snapshot, so nothing that
happens in between is missed. If an event was lost (a worker died between its
commit and its publish), the database still says when the transfer finished,
and a terminal event is made from it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from graphql import GraphQLError

from graph.errors import TRANSFERS
from graph.relay import to_global_id
from graph.transfers import TransferStatus, find_transfer
from jobs import events
from models.lifecycle import Event
from models.transfers import Transfer
from models.transfers import TransferStatus as Status

CURSOR = re.compile(r"^\d+-\d+$")
# How often a quiet subscription looks at the database, in case an event was lost.
RECHECK_MS = 5000


@strawberry.enum
class TransferEventType(enum.Enum):
    SNAPSHOT = "SNAPSHOT"
    STARTED = "STARTED"
    ITEM_SUCCEEDED = "ITEM_SUCCEEDED"
    ITEM_FAILED = "ITEM_FAILED"
    SUCCEEDED = "SUCCEEDED"
    PARTIALLY_FAILED = "PARTIALLY_FAILED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@strawberry.type
class TransferEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume.")
    transfer_id: strawberry.ID
    type: TransferEventType
    status: TransferStatus
    total_pairs: int
    processed_pairs: int
    succeeded_pairs: int
    failed_pairs: int
    source_user_id: int | None
    target_user_id: int | None
    error_code: str | None
    message: str | None
    at: datetime

    @classmethod
    def of(cls, cursor: str, e: Event) -> TransferEvent:
        return cls(
            cursor=cursor,
            transfer_id=strawberry.ID(to_global_id("Transfer", e.transfer_id)),
            type=TransferEventType(e.type),
            status=Status(e.status),
            total_pairs=e.total_pairs,
            processed_pairs=e.processed_pairs,
            succeeded_pairs=e.succeeded_pairs,
            failed_pairs=e.failed_pairs,
            source_user_id=e.source_user_id,
            target_user_id=e.target_user_id,
            error_code=e.error_code,
            message=e.message,
            at=e.at,
        )


def _from_database(transfer: Transfer, type_: str) -> Event:
    return Event.of(transfer, type_, message=transfer.message)


async def watch(redis, transfer: Transfer, after: str | None) -> AsyncGenerator[TransferEvent, None]:
    """SNAPSHOT, then every event after the snapshot's position, until the terminal one."""
    position = after or await events.last_cursor(redis, transfer.id)
    await transfer.refresh_from_db()
    yield TransferEvent.of(position, _from_database(transfer, "SNAPSHOT"))
    if not Status(transfer.status).finished:
        async for batch in events.follow(redis, transfer.id, position, block_ms=RECHECK_MS):
            for position, event in batch:
                yield TransferEvent.of(position, event)
                if event.terminal:
                    return
            if not batch:
                await transfer.refresh_from_db()
                if Status(transfer.status).finished:
                    break
    # Finished: what the stream still holds, then the terminal event if it was lost.
    for position, event in await events.since(redis, transfer.id, position):
        yield TransferEvent.of(position, event)
        if event.terminal:
            return
    await transfer.refresh_from_db()
    terminal = _from_database(transfer, Status(transfer.status).value)
    yield TransferEvent.of(position, terminal)


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(
        permission_classes=TRANSFERS,
        description="A SNAPSHOT of the transfer, then its events as they happen, until the terminal one. "
        "Pass the last cursor you saw as `after` to resume without loss or repeat.",
    )
    async def transfer_events(
        self, info: strawberry.Info, transfer_id: strawberry.ID, after: str | None = None
    ) -> AsyncGenerator[TransferEvent, None]:
        if after is not None and not CURSOR.match(after):
            raise GraphQLError("`after` is not a cursor of this subscription.", extensions={"code": "INVALID_CURSOR"})
        transfer = await find_transfer(await info.context.operator(), transfer_id)
        if transfer is None:
            raise GraphQLError("No such transfer.", extensions={"code": "NOT_FOUND"})
        async for event in watch(info.context.pool, transfer, after):
            yield event
