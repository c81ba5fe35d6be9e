"""The transferEvents subscription: a SNAPSHOT, then live events until the terminal one.

Events are numbered in commit order and recorded in the database; the cursor
is that number. Live events come from the transfer's Redis stream, read from a
position noted before the snapshot. When the stream shows a gap (two workers
published out of commit order, or one died between its commit and its
publish) or stays silent for a while, the subscription reads the record
instead, so it never loses, repeats or reorders an event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime

import strawberry
from graphql import GraphQLError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from graph.errors import TRANSFERS, CanTransfer, IsAuthenticated
from graph.relay import to_global_id
from graph.transfers import TransferStatus, find_transfer
from jobs import events, metrics
from models import lifecycle
from models.lifecycle import Event
from models.transfers import Transfer
from models.transfers import TransferStatus as Status

# How often a quiet subscription looks at the database, in case an event was lost.
RECHECK_MS = 5000
# How often an open subscription checks that its token is still live and the
# transfer still visible: an expired or revoked token ends it within this + RECHECK_MS.
ACCESS_RECHECK_SECONDS = 30.0

AccessCheck = Callable[[], Awaitable[object]]


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
            cursor=encode_cursor(e.transfer_id, e.seq),
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


def encode_cursor(transfer_id: int, seq: int) -> str:
    """Opaque, and bound to its transfer: another transfer's cursor is refused, not misread."""
    return base64.urlsafe_b64encode(f"TransferEvent:{transfer_id}:{seq}".encode()).decode()


def decode_cursor(cursor: str, transfer: Transfer) -> int:
    """The event number behind a cursor of `transfer`'s events; INVALID_CURSOR otherwise."""
    try:
        kind, transfer_id, seq = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        exact = encode_cursor(transfer.id, int(seq)) == cursor  # only the canonical encoding, as for IDs
        if exact and kind == "TransferEvent" and int(transfer_id) == transfer.id and 0 <= int(seq) <= transfer.last_event:
            return int(seq)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        pass
    raise GraphQLError("`after` is not a cursor of this transfer's events.", extensions={"code": "INVALID_CURSOR"})


async def _snapshot(transfer: Transfer, at: int) -> Event:
    """The transfer as it was after event `at`: now, or as recorded then when resuming."""
    if at == transfer.last_event:
        return replace(Event.of(transfer, "SNAPSHOT", message=transfer.message), seq=at)
    if at == 0:
        return Event(transfer.id, 0, "SNAPSHOT", Status.QUEUED.value, transfer.total_pairs, 0, 0, 0, transfer.created_at)
    (then,) = await lifecycle.recorded(transfer.id, at - 1, until=at)
    return replace(then, type="SNAPSHOT", source_user_id=None, target_user_id=None, error_code=None)


async def _published(redis: Redis, transfer_id: int, position: str) -> tuple[str, list[Event]]:
    """What the stream brings in the next few seconds; nothing if Redis is unwell (the record then serves)."""
    try:
        return await asyncio.wait_for(events.wait(redis, transfer_id, position, RECHECK_MS), RECHECK_MS / 1000 + 2)
    except (RedisError, OSError):
        await asyncio.sleep(RECHECK_MS / 1000)
    except asyncio.TimeoutError:
        pass
    return position, []


async def watch(
    redis: Redis, transfer: Transfer, after: str | None, check_access: AccessCheck | None = None
) -> AsyncGenerator[TransferEvent, None]:
    """SNAPSHOT, then every event numbered after it, in order, until the terminal one.

    `check_access` runs every ACCESS_RECHECK_SECONDS and raises to end the subscription.
    """
    checked = time.monotonic()
    try:
        position = await events.position(redis, transfer.id)  # before the snapshot: nothing falls in between
    except RedisError:
        position = events.START
    await transfer.refresh_from_db()
    last = decode_cursor(after, transfer) if after is not None else transfer.last_event
    yield TransferEvent.of(await _snapshot(transfer, last))
    pending = await lifecycle.recorded(transfer.id, last)
    if not pending and Status(transfer.status).finished:
        pending = await lifecycle.recorded(transfer.id, transfer.last_event - 1)  # its terminal event, always last
    while True:
        for event in pending:
            yield TransferEvent.of(event)
            last = event.seq
            if event.terminal:
                return
        if check_access and time.monotonic() - checked >= ACCESS_RECHECK_SECONDS:
            await check_access()
            checked = time.monotonic()
        position, published = await _published(redis, transfer.id, position)
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
        async def check_access() -> Transfer:
            """At the start and every so often: a WebSocket outlives tokens (expired, revoked),
            permissions and views, and one connection may start many subscriptions."""
            if not await info.context.still_authenticated():
                raise GraphQLError(IsAuthenticated.message, extensions={"code": "UNAUTHENTICATED"})
            operator = await info.context.operator()
            if not operator.may_transfer:
                raise GraphQLError(CanTransfer.message, extensions={"code": "FORBIDDEN"})
            transfer = await find_transfer(operator, transfer_id)
            if transfer is None:
                raise GraphQLError("No such transfer.", extensions={"code": "NOT_FOUND"})
            return transfer

        transfer = await check_access()
        with metrics.SUBSCRIPTIONS_OPEN.track_inprogress():
            async for event in watch(info.context.pool, transfer, after, check_access):
                yield event
