"""The job functions: run a chunk of a transfer's pairs; re-enqueue lost work.

Thin on purpose: the rules live in models.lifecycle. A chunk is a few dozen
pairs so that a worker killed mid-job delays little: arq hands the chunk to
another worker once its in-progress key expires (job timeout + 10 s), and the
pairs already applied are skipped because each one is claimed exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from arq.connections import ArqRedis

from jobs import events
from models import lifecycle, settings
from models.transfers import ACTIVE_STATUSES, ItemStatus, Transfer, TransferItem


def job_id(transfer_id: int, chunk: int) -> str:
    return f"udt:transfer:{transfer_id}:chunk:{chunk}"


async def enqueue(pool: ArqRedis, transfer: Transfer, chunks: list[int] | None = None) -> None:
    """Queue a transfer's chunks (all of them by default). Duplicates are refused by arq's job IDs."""
    size = settings.CHUNK_SIZE
    count = (transfer.total_pairs + size - 1) // size
    for chunk in chunks if chunks is not None else range(count):
        await pool.enqueue_job("run_chunk", transfer.id, chunk, _job_id=job_id(transfer.id, chunk))


async def run_chunk(ctx: dict[str, Any], transfer_id: int, chunk: int) -> int:
    """Apply the pending pairs of one chunk; returns how many this run applied."""
    redis = ctx["redis"]
    await events.announce(redis, await lifecycle.begin(transfer_id))
    size = settings.CHUNK_SIZE
    item_ids = await TransferItem.filter(
        transfer_id=transfer_id,
        status=ItemStatus.PENDING,
        position__gte=chunk * size,
        position__lt=(chunk + 1) * size,
    ).order_by("position").values_list("id", flat=True)
    applied = 0
    for item_id in item_ids:
        done = await lifecycle.process_item(item_id)
        await events.announce(redis, done)
        applied += bool(done)
    return applied


async def reconcile(ctx: dict[str, Any]) -> int:
    """Re-enqueue the chunks of active transfers that still have pending pairs.

    The database is the source of truth: if Redis lost a job, this finds it again.
    Transfers younger than the grace period are left to the enqueue that follows
    their start. Returns how many chunks were offered to the queue.
    """
    size = settings.CHUNK_SIZE
    before = datetime.now(timezone.utc) - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
    pending = await TransferItem.filter(
        status=ItemStatus.PENDING, transfer__status__in=ACTIVE_STATUSES, transfer__created_at__lt=before
    ).values_list("transfer_id", "position")
    chunks: dict[int, set[int]] = {}
    for transfer_id, position in pending:
        chunks.setdefault(transfer_id, set()).add(position // size)
    for transfer_id, wanted in chunks.items():
        await enqueue(ctx["redis"], await Transfer.get(id=transfer_id), sorted(wanted))
    return sum(len(c) for c in chunks.values())
