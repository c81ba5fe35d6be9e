"""Lanes and their leases: who works which pairs of a transfer, and for how long.

A transfer's pairs are split into lanes (a single transfer has one). One job at
a time works a lane, under a lease in the database that it renews while it
runs. The queue (arq on Redis) only says which job to start next; the database
says who owns what. So a worker that dies loses its lane once the lease runs
out, whatever the job timeout, and a healthy pair is never cut short by a clock.

Every change is a conditional UPDATE on the lane's `generation`, the fencing
token: a job of an older generation finds it no longer owns the lane and stops.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import settings
from models.clock import now
from models.db import reachable_for
from models.transfers import ACTIVE_STATUSES, ItemStatus, TransferItem, TransferLane

HOLDER = f"{socket.gethostname()}:{os.getpid()}"[:200]


@dataclass(frozen=True)
class LaneRef:
    """A lane and the generation of the job meant to work it."""

    transfer_id: int
    lane: int
    generation: int



def lane_count(bulk: bool, pairs: int) -> int:
    lanes = settings.BULK_LANES if bulk else 1
    return max(1, min(lanes, pairs))


async def create(transfer_id: int, lanes: int, db: BaseDBAsyncClient) -> None:
    """The lanes of a new transfer, inside the transaction that creates it (enqueued after
    its commit, from the database: see of_transfer)."""
    await TransferLane.bulk_create(
        [TransferLane(transfer_id=transfer_id, lane=lane) for lane in range(lanes)], using_db=db
    )


def _mine(ref: LaneRef):  # type: ignore[no-untyped-def]
    return TransferLane.filter(
        transfer_id=ref.transfer_id, lane=ref.lane, generation=ref.generation, finished=False
    )


async def hold(ref: LaneRef) -> bool:
    """Take or renew the lease; False when the lane belongs to another generation (stop)."""
    until = now() + timedelta(seconds=settings.LEASE_SECONDS)
    return bool(await _mine(ref).update(lease_until=until, holder=HOLDER))


async def hand_over(ref: LaneRef) -> LaneRef | None:
    """Give the lane to the next generation's job (to be enqueued); None if it was not ours."""
    moved = await _mine(ref).update(generation=F("generation") + 1, lease_until=None, holder=None)
    return LaneRef(ref.transfer_id, ref.lane, ref.generation + 1) if moved else None


async def finish(ref: LaneRef) -> None:
    """The lane has no pending pair left."""
    await _mine(ref).update(finished=True, lease_until=None, holder=None)


async def pending_items(ref: LaneRef, limit: int = 100, db: BaseDBAsyncClient | None = None) -> list[int]:
    """The next pending pairs of the lane, in file order."""
    return await (
        TransferItem.filter(transfer_id=ref.transfer_id, lane=ref.lane, status=ItemStatus.PENDING)
        .using_db(db)
        .order_by("position")
        .limit(limit)
        .values_list("id", flat=True)
    )


def _open_lanes():  # type: ignore[no-untyped-def]
    return TransferLane.filter(finished=False, transfer__status__in=ACTIVE_STATUSES)


async def take_over_expired() -> list[tuple[LaneRef, LaneRef]]:
    """Lanes whose holder stopped renewing (a dead or stuck worker), fenced off.

    Returns (old, new) pairs: the old generation's job is to be dropped from the
    queue, the new one enqueued. Each lane is taken by one caller only, however
    many workers reconcile at once: the UPDATE is conditional on the generation.
    None is taken within a lease of the database coming back: nobody could renew
    while it was away, and live holders get their time to renew (models/db.py).
    """
    if reachable_for() < settings.LEASE_SECONDS:
        return []
    expired = await _open_lanes().filter(lease_until__lt=now()).values_list("transfer_id", "lane", "generation")
    taken = []
    for transfer_id, lane, generation in expired:
        old = LaneRef(transfer_id, lane, generation)
        async with in_transaction() as db:
            if await _mine(old).filter(lease_until__lt=now()).using_db(db).update(
                generation=F("generation") + 1, lease_until=None, holder=None
            ):
                await _count_lost_attempt(old, db)
                taken.append((old, LaneRef(transfer_id, lane, generation + 1)))
    return taken


async def _count_lost_attempt(ref: LaneRef, db: BaseDBAsyncClient) -> None:
    """The lane's first pending pair is the one its dead holder was on (or about to be):
    that attempt rolled back with the worker, so it is counted here (see lifecycle.process_item)."""
    first = await pending_items(ref, limit=1, db=db)
    if first:
        await TransferItem.filter(id=first[0]).using_db(db).update(attempts=F("attempts") + 1)


async def waiting() -> list[LaneRef]:
    """Lanes of active transfers whose job should be in the queue (no lease held).

    A transfer younger than the grace period is left to the enqueue that follows
    its start.
    """
    settled = now() - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
    rows = (
        await _open_lanes()
        .filter(lease_until=None, transfer__created_at__lt=settled)
        .values_list("transfer_id", "lane", "generation")
    )
    return [LaneRef(*row) for row in rows]


async def of_transfer(transfer_id: int) -> list[LaneRef]:
    """The open lanes of one transfer, as their jobs should be enqueued now."""
    rows = await TransferLane.filter(transfer_id=transfer_id, finished=False).values_list(
        "transfer_id", "lane", "generation"
    )
    return [LaneRef(*row) for row in rows]
