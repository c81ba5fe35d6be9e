"""Queuing a transfer just started (single, bulk, retry or revert), after the commit that started it.

Every start goes through `queue`: the transfer is counted and logged once, then its lanes
are offered to the workers. Redis being down is not the caller's failure: the transfer
stays QUEUED and the workers' reconciler enqueues it when they can.
"""

from __future__ import annotations

import logging

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from jobs import metrics
from jobs import transfer as transfer_jobs
from models.transfers import Transfer

log = logging.getLogger(__name__)


def transfer_started(transfer: Transfer) -> None:
    """Counted once committed; the rest of the request's lines name the transfer (and its upload)."""
    ids = {"transfer_id": transfer.id}
    if transfer.upload_id is not None:
        ids["upload_id"] = transfer.upload_id
    structlog.contextvars.bind_contextvars(**ids)
    kind = transfer.kind.value if hasattr(transfer.kind, "value") else str(transfer.kind)
    metrics.transfer_started(kind)
    retry = {"retry_of": transfer.retry_of_id} if transfer.retry_of_id is not None else {}
    log.info("transfer started", extra={"kind": kind, "total_pairs": transfer.total_pairs, **retry})


async def queue(pool: ArqRedis, transfer: Transfer) -> None:
    """Count, log and enqueue a transfer just started. Offering a transfer again (a start resent
    with its idempotency key) queues nothing new: arq refuses a job ID it holds, and a finished
    lane is not offered; nor is it counted as started again."""
    if not transfer.replayed:
        transfer_started(transfer)
    try:
        await transfer_jobs.enqueue(pool, transfer)
    except (RedisError, ConnectionError, OSError):
        log.warning("could not enqueue transfer %s now; the reconciler will", transfer.id, exc_info=True)
