"""The transferEvents subscription: a SNAPSHOT, then live events until the terminal one.

Events are numbered in commit order and recorded in the database; the cursor
is that number (a SNAPSHOT's is marked as one, so no two events share a
cursor). Live events come from the transfer's Redis stream, which one reader
per API process follows for all its subscribers (graph/live/fanout.py): it puts
them in commit order and fills a gap from the record (two lanes published out
of commit order and the missing event is late, or a worker died between its
commit and its publish). A subscription takes the events numbered after the
last it sent; when none comes for a while, it reads the record itself. So it
never loses, repeats or reorders an event. An event's result is executed
once per selection for all subscribers (graph/execution/shared_events.py).
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated

import strawberry
from graph.api.transfers import Transfer, TransferStatus, find_transfer
from graph.core.errors import TRANSFERS, CanTransfer, IsAuthenticated
from graph.core.relay import decode_cursor, encode_cursor, to_global_id
from graph.execution.shared_events import EventBatch, shareable
from graph.fences.strawberry import raw_fragments
from graph.live.fanout import Fanout, Published
from graph.live.websocket import sends_many
from graphql import GraphQLError
from jobs import metrics
from models import transfer_events
from models.transfer_events import Event
from models.transfers import Transfer as TransferRow
from models.transfers import TransferStatus as Status

# How often a quiet subscription looks at the database, in case an event was lost.
RECHECK_MS = 5000
# How often an open subscription checks that its token is still live and the
# transfer still visible: an expired or revoked token ends it within this + RECHECK_MS.
# A JWT is checked at its `exp` too, so its subscriptions end within RECHECK_MS of it.
ACCESS_RECHECK_SECONDS = 30.0

AccessCheck = Callable[[], Awaitable[object]]


@strawberry.enum(description="What happened. SNAPSHOT is the state when the subscription starts (or at the `after` cursor).")
class TransferEventType(enum.Enum):
    SNAPSHOT = strawberry.enum_value("SNAPSHOT", description="The transfer's state when you subscribed (or at the `after` cursor); always first.")
    STARTED = strawberry.enum_value("STARTED", description="A worker began the transfer: status is now RUNNING.")
    ITEM_SUCCEEDED = strawberry.enum_value("ITEM_SUCCEEDED", description="One pair's data moved to its target.")
    ITEM_FAILED = strawberry.enum_value(
        "ITEM_FAILED", description="One pair failed and changed nothing; errorCode and message say why."
    )
    SUCCEEDED = strawberry.enum_value("SUCCEEDED", description="Terminal: every pair moved.")
    PARTIALLY_FAILED = strawberry.enum_value("PARTIALLY_FAILED", description="Terminal: some pairs moved, some failed.")
    FAILED = strawberry.enum_value("FAILED", description="Terminal: no pair moved.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="Terminal: cancelled; the pairs not yet run ended CANCELLED.")


@strawberry.type(
    description="One change of a transfer, with the transfer's counters after it. Events arrive in order, "
    "numbered per transfer; the last is terminal (its type equals the final status)."
)
class TransferEvent:
    """Its leaves must depend on the event alone: their result is shared (graph/execution/shared_events.py)."""

    row: strawberry.Private[TransferRow]
    cursor: str = strawberry.field(
        description="Unique per event (a SNAPSHOT's too). Pass as `after` to resume right after this event "
        "(after a SNAPSHOT: right after the state it showed)."
    )
    transfer_id: strawberry.ID = strawberry.field(description="The global ID of the transfer.")
    type: TransferEventType = strawberry.field(description="What happened.")
    status: TransferStatus = strawberry.field(description="The transfer's status after this event.")
    total_pairs: int = strawberry.field(description="Pairs in the transfer.")
    processed_pairs: int = strawberry.field(description="Pairs finished (succeeded or failed) after this event.")
    succeeded_pairs: int = strawberry.field(description="Pairs whose data moved, after this event.")
    failed_pairs: int = strawberry.field(description="Pairs that failed, after this event.")
    source_user_id: int | None = strawberry.field(description="ITEM_* events: the pair's source User ID.")
    target_user_id: int | None = strawberry.field(description="ITEM_* events: the pair's target User ID.")
    error_code: str | None = strawberry.field(description="ITEM_FAILED: the stable code of why the pair failed.")
    message: str | None = strawberry.field(
        description="ITEM_* events: what happened to the pair; terminal events and a finished "
        "transfer's SNAPSHOT: the transfer's summary."
    )
    at: datetime = strawberry.field(description="When it happened.")
    shared: strawberry.Private[dict | None] = None

    @classmethod
    def of(cls, e: Event, row: TransferRow, shared: dict | None = None) -> TransferEvent:
        """`row` is the transfer as the subscription found it (through the operator's visibility);
        `shared` holds the work done for every subscriber of this event (graph/live/fanout.py)."""
        fields = shared.get(TransferEvent) if shared is not None else None
        if fields is None:
            fields = {
                "cursor": event_cursor(e.transfer_id, e.seq, snapshot=e.type == "SNAPSHOT"),
                "transfer_id": strawberry.ID(to_global_id("Transfer", e.transfer_id)),
                "type": TransferEventType(e.type),
                "status": Status(e.status),
                "total_pairs": e.total_pairs,
                "processed_pairs": e.processed_pairs,
                "succeeded_pairs": e.succeeded_pairs,
                "failed_pairs": e.failed_pairs,
                "source_user_id": e.source_user_id,
                "target_user_id": e.target_user_id,
                "error_code": e.error_code,
                "message": e.message,
                "at": e.at,
            }
            if shared is not None:
                shared[TransferEvent] = fields
        # Not through the dataclass's __init__, whose 15 arguments cost per event and subscriber:
        # no field has a default to apply.
        event = cls.__new__(cls)
        event.__dict__.update(fields)
        event.row, event.shared = row, shared
        return event

    @strawberry.field(
        description="The transfer as this event left it (status, counters, message, startedAt, finishedAt "
        "are this event's; items and failedUserIds are read now). Same id and type as `transfer(id:)`, "
        "so a normalized cache (Apollo, urql Graphcache) updates its Transfer entry from each event."
    )
    async def transfer(self) -> Transfer:
        status = Status(self.status.value)
        started, finished = status is not Status.QUEUED, status.finished
        if (started and self.row.started_at is None) or (finished and self.row.finished_at is None):
            # The row was read before this event: read it again (the times are set once, never cleared).
            await self.row.refresh_from_db(fields=["started_at", "finished_at"])
        return replace(
            Transfer.of(self.row),
            status=status,
            total_pairs=self.total_pairs,
            processed_pairs=self.processed_pairs,
            succeeded_pairs=self.succeeded_pairs,
            failed_pairs=self.failed_pairs,
            message=self.message if finished else None,  # before the end a message is about one pair
            started_at=self.row.started_at if started else None,
            finished_at=self.row.finished_at if finished else None,
        )


SNAPSHOT_MARK = "snapshot"


def _events_of(transfer_id: int) -> str:
    """The connection a transfer's event cursors are bound to: another transfer's cursor is refused, not misread."""
    return f"TransferEvent:{transfer_id}"


def event_cursor(transfer_id: int, seq: int, snapshot: bool = False) -> str:
    """The cursor of event `seq`. A SNAPSHOT shows the state after event `seq`, so it resumes from the
    same point as that event; its cursor is marked so that no two events of a subscription share one
    (lists keyed by cursor)."""
    return encode_cursor(_events_of(transfer_id), seq, SNAPSHOT_MARK if snapshot else "")


def _resume_after(cursor: str, transfer: TransferRow) -> int:
    """The event number behind a cursor of `transfer`'s events; INVALID_CURSOR otherwise."""
    seq = decode_cursor(_events_of(transfer.id), cursor, ("", SNAPSHOT_MARK), highest=transfer.last_event)
    if seq is None:
        raise GraphQLError("`after` is not a cursor of this transfer's events.", extensions={"code": "INVALID_CURSOR"})
    return seq


async def _snapshot(transfer: TransferRow, at: int) -> Event:
    """The transfer as it was after event `at`: now, or as recorded then when resuming."""
    if at == transfer.last_event:
        return replace(Event.of(transfer, "SNAPSHOT", message=transfer.message), seq=at)
    if at == 0:
        return Event(transfer.id, 0, "SNAPSHOT", Status.QUEUED.value, transfer.total_pairs, 0, 0, 0, transfer.created_at)
    (then,) = await transfer_events.recorded(transfer.id, at - 1, until=at)
    return replace(then, type="SNAPSHOT", source_user_id=None, target_user_id=None, error_code=None)


async def _recorded(transfer_id: int, after: int) -> list[Published]:
    return [Published(e) for e in await transfer_events.recorded(transfer_id, after)]


def _shared_run(pending: list[Published]) -> int:
    """How many of the first events are shared by every subscriber (the rest were read from the record)."""
    return next((n for n, p in enumerate(pending) if p.shared is None), len(pending))


async def watch(
    fanout: Fanout,
    transfer: TransferRow,
    after: str | None,
    check_access: AccessCheck | None = None,
    batches: bool = False,
    access_ends: float | None = None,
) -> AsyncGenerator[TransferEvent | EventBatch, None]:
    """SNAPSHOT, then every event numbered after it, in order, until the terminal one.

    `check_access` runs every ACCESS_RECHECK_SECONDS, and from `access_ends` on (a Unix time: when
    the token ends by itself, a JWT's `exp`), and raises to end the subscription.
    With `batches`, shared events that arrive together are yielded as one EventBatch (graph/execution/shared_events.py).
    """
    # The first check comes at a random point of the period, so that many subscriptions opened
    # together (a page of 500 operators) do not all check at once, every time.
    checked = time.monotonic() - random.uniform(0, ACCESS_RECHECK_SECONDS)
    with metrics.SUBSCRIPTIONS_OPEN.track_inprogress():
        async with fanout.follow(transfer.id) as stream:
            await stream.start()  # before the snapshot: nothing falls in between
            await transfer.refresh_from_db()
            last = _resume_after(after, transfer) if after is not None else transfer.last_event
            yield TransferEvent.of(await _snapshot(transfer, last), transfer)
            pending = await _recorded(transfer.id, last)
            if not pending and Status(transfer.status).finished:
                pending = await _recorded(transfer.id, transfer.last_event - 1)  # its terminal event, always last
            while True:
                if batches and (run := _shared_run(pending)) > 1:
                    batch = EventBatch(pending[:run], lambda p: TransferEvent.of(p.event, transfer, p.shared))
                    yield batch
                    if batch.taken:
                        last = pending[batch.taken - 1].event.seq
                        if pending[batch.taken - 1].event.terminal:
                            return
                    pending = pending[batch.taken :]
                for p in pending:
                    yield TransferEvent.of(p.event, transfer, p.shared)
                    last = p.event.seq
                    if p.event.terminal:
                        return
                due = time.monotonic() - checked >= ACCESS_RECHECK_SECONDS
                if check_access and (due or (access_ends is not None and time.time() >= access_ends)):
                    await check_access()
                    checked = time.monotonic()
                pending = await stream.after(last, RECHECK_MS) or await _recorded(transfer.id, last)  # silence: the record


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(
        permission_classes=TRANSFERS,
        description="A SNAPSHOT of the transfer, then its events as they happen, until the terminal one. "
        "Pass the last cursor you saw as `after` to resume without loss or repeat.",
    )
    async def transfer_events(
        self,
        info: strawberry.Info,
        transfer_id: Annotated[strawberry.ID, strawberry.argument(description="The transfer's global ID.")],
        after: Annotated[
            str | None,
            strawberry.argument(description="The cursor of the last event you saw: the SNAPSHOT is then the "
            "state at that event, and the events after it follow. Null: start from now."),
        ] = None,
    ) -> AsyncGenerator[TransferEvent, None]:
        async def check_access() -> TransferRow:
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
        batches = sends_many(info.context.request.scope) and shareable(info.operation, raw_fragments(info))
        ends = info.context.access_ends()
        return watch(info.context.fanout, transfer, after, check_access, batches, ends)  # not wrapped: each event passes one layer less
