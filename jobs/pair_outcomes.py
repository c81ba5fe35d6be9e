"""What operators are told of each pair's outcome and a transfer's end: a log line and the metrics per event.

Observes what the domain returns (the events of `running.process_item`, the
item's counts), so models/ knows nothing of logs or Prometheus.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs import metrics
from models.transfer_events import Event
from models.transfers import Transfer

log = logging.getLogger(__name__)


async def about(transfer_id: int) -> dict[str, Any]:
    """What every log line of a lane's job carries: the transfer, its upload, tenant and operator."""
    found = await Transfer.filter(id=transfer_id).values(
        "upload_id", "tenant__slug", "requested_by__username"
    )
    context: dict[str, Any] = {"transfer_id": transfer_id}
    if found:
        row = found[0]
        context["tenant"] = row["tenant__slug"]
        if row["requested_by__username"] is not None:
            context["operator"] = row["requested_by__username"]
        if row["upload_id"] is not None:
            context["upload_id"] = row["upload_id"]
    return context


async def pair_done(events: list[Event], seconds: float) -> None:
    """Count and log a pair that `process_item` applied or failed (nothing if it found nothing to do)."""
    for event in events:
        users = {"source_user_id": event.source_user_id, "target_user_id": event.target_user_id}
        if event.type == "ITEM_SUCCEEDED":
            moved, deleted = event.records or ({}, {})
            metrics.pair_applied(seconds, moved, deleted)
            log.info(
                "pair applied",
                extra={**users, "records_moved": sum(moved.values()), "records_deleted": sum(deleted.values()),
                       "seconds": round(seconds, 3)},
            )
        elif event.type == "ITEM_FAILED":
            metrics.pair_failed(seconds, event.error_code)
            log.warning("pair failed", extra={**users, "error_code": event.error_code, "reason": event.message})
        elif event.terminal:
            await finished(event)


async def finished(event: Event) -> None:
    """Count and log a transfer's terminal event (after its last pair, or a cancel); others pass."""
    if not event.terminal:
        return
    kinds = await Transfer.filter(id=event.transfer_id).values_list("kind", flat=True)
    kind = str(getattr(kinds[0], "value", kinds[0])) if kinds else "UNKNOWN"
    metrics.transfer_finished(kind, event.status)
    log.info(
        "transfer finished",
        extra={"transfer_id": event.transfer_id, "status": event.status, "total_pairs": event.total_pairs,
               "succeeded_pairs": event.succeeded_pairs, "failed_pairs": event.failed_pairs},
    )
