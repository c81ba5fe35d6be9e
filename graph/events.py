"""The transferEvents subscription: a SNAPSHOT, then live events until the terminal one.

Events are numbered in commit order and recorded in the database; the cursor
is that number. Live events come from the transfer's Redis stream, read from a
position noted before the snapshot. When the stream shows a gap (two workers
published out of commit order, or one died between its commit and its
publish) or stays silent for a while, the subscription reads the record
instead, so it never loses, repeats or reorders an event.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import datetime

import strawberry
from graphql import GraphQLError
from redis.asyncio import Redis

from graph.errors import TRANSFERS
from graph.relay import to_global_id
from graph.transfers import TransferStatus, find_transfer
from jobs import events
from models import lifecycle
from models.db import MAX_INT
from models.lifecycle import Event
from models.transfers import Transfer
from models.transfers import TransferStatus as Status

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
    def of(cls, e: Event) -> TransferEvent:
        return cls(
            cursor=str(e.seq),
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


async def watch(redis: Redis, transfer: Transfer, after: int | None) -> AsyncGenerator[TransferEvent, None]:
    """SNAPSHOT, then every event numbered after it, in order, until the terminal one."""
    position = await events.position(redis, transfer.id)  # before the snapshot: nothing falls in between
    await transfer.refresh_from_db()
    last = after if after is not None else transfer.last_event
    snapshot = Event.of(transfer, "SNAPSHOT", message=transfer.message)
    yield TransferEvent.of(replace(snapshot, seq=last))
    pending = await lifecycle.recorded(transfer.id, last)
    if not pending and Status(transfer.status).finished:
        pending = await lifecycle.recorded(transfer.id, transfer.last_event - 1)  # its terminal event
    while True:
        for event in pending:
            yield TransferEvent.of(event)
            last = event.seq
            if event.terminal:
                return
        position, published = await events.wait(redis, transfer.id, position, RECHECK_MS)
        fresh = sorted((e for e in published if e.seq > last), key=lambda e: e.seq)
        if fresh and [e.seq for e in fresh] == list(range(last + 1, last + 1 + len(fresh))):
            pending = fresh  # the usual case: the next events, straight from Redis
        else:
            pending = await lifecycle.recorded(transfer.id, last)  # a gap or silence: ask the record


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
        if after is not None and not (after.isascii() and after.isdigit() and int(after) <= MAX_INT):
            raise GraphQLError("`after` is not a cursor of this subscription.", extensions={"code": "INVALID_CURSOR"})
        transfer = await find_transfer(await info.context.operator(), transfer_id)
        if transfer is None:
            raise GraphQLError("No such transfer.", extensions={"code": "NOT_FOUND"})
        async for event in watch(info.context.pool, transfer, int(after) if after is not None else None):
            yield event
