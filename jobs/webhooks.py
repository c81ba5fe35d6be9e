"""Webhook deliveries in the workers: an arq job per attempt, offered after the commit that
wrote the delivery, and again by every worker's sweep from the database.

Never in the API process (the API only offers jobs), never in a transfer's way: a
lane's job commits the ending, offers the deliveries and goes on; the attempts run
from a queue of their own, in a worker of their own inside each worker process
(jobs/worker.py), so receivers that never answer hold none of the lanes' slots. The database
holds each delivery's state; the job ID names the attempt it is for, so an
offer made twice queues one job, and a job that finds its delivery not due, done
or held by another worker does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from jobs import metrics
from jobs.webhook_http import attempt
from models import settings, webhook_deliveries
from models.transfer_events import Event
from models.webhook_deliveries import Recorded
from models.webhook_urls import GUARD
from models.webhooks import DeliveryStatus, WebhookDelivery

log = logging.getLogger(__name__)


def job_id(delivery: WebhookDelivery) -> str:
    """One job per attempt: the delivery, its attempts so far, and when the next is due."""
    due = int(delivery.next_attempt_at.timestamp() * 1000) if delivery.next_attempt_at else 0
    return f"udt:webhook:{delivery.id}:{delivery.attempts}:{due}"


async def offer(redis: ArqRedis, deliveries: Iterable[WebhookDelivery]) -> None:
    """Queue an attempt of each delivery at its time (arq refuses a job ID it holds)."""
    for delivery in deliveries:
        await redis.enqueue_job(
            "deliver_webhook", delivery.id,
            _job_id=job_id(delivery), _queue_name=queue_name(), _defer_until=delivery.next_attempt_at,
        )


async def offer_ended(redis: ArqRedis, events: list[Event]) -> None:
    """After the commit of a transfer's end: queue the deliveries it wrote. Redis away costs
    only time: the sweep finds them."""
    ended = [e.transfer_id for e in events if e.terminal]
    if not ended:
        return
    try:
        await offer(redis, await webhook_deliveries.pending_of(ended))
    except (RedisError, OSError) as exc:
        log.warning("could not queue the webhooks of transfer(s) %s now (%r); the sweep will", ended, exc)


async def sweep(redis: ArqRedis) -> int:
    """Offer every due delivery no live lease holds (lost jobs, dead workers, moved clocks)."""
    found = await webhook_deliveries.due()
    await offer(redis, found)
    return len(found)


def queue_name() -> str:
    """The webhooks' own arq queue, beside the transfers' one: an attempt waiting for a receiver
    that never answers holds a slot of the webhook worker only, never a lane's."""
    return f"{settings.QUEUE_NAME}:webhooks"


async def deliver_webhook(ctx: dict[str, Any], delivery_pk: int) -> str:
    """One attempt of a delivery, if it is due and this job gets it; returns what became of it."""
    held = await webhook_deliveries.claim(delivery_pk)
    if held is None:
        return "not due"
    about = {"delivery_id": delivery_pk, "webhook_id": webhook_deliveries.delivery_id(delivery_pk),
             "endpoint_id": held.delivery.endpoint_id, "event": held.delivery.event}
    if held.delivery.transfer_id is not None:
        about["transfer_id"] = held.delivery.transfer_id
    with structlog.contextvars.bound_contextvars(**about):
        outcome = await attempt(held, ctx.get("webhook_guard", GUARD), settings.WEBHOOK_TIMEOUT_SECONDS)
        recorded = await webhook_deliveries.record(held, outcome)
        _tell(recorded)
    if recorded.delivery.status is DeliveryStatus.PENDING:
        await offer(ctx["redis"], [recorded.delivery])
    return recorded.delivery.status.value


def _tell(recorded: Recorded) -> None:
    """A log line and the metrics for an attempt."""
    delivery = recorded.delivery
    said = {"attempt": delivery.attempts, "response_status": delivery.last_response_status}
    if delivery.status is DeliveryStatus.DELIVERED:
        metrics.WEBHOOKS_DELIVERED.inc()
        log.info("webhook delivered", extra=said)
        return
    if delivery.status is DeliveryStatus.PENDING:
        metrics.WEBHOOKS_RETRIED.inc()
        log.warning("webhook attempt failed", extra={**said, "error": delivery.last_error,
                                                      "next_attempt_at": delivery.next_attempt_at.isoformat()})
    else:
        metrics.WEBHOOKS_FAILED.inc()
        log.warning("webhook failed", extra={**said, "error": delivery.last_error})
    if recorded.disabled:
        log.warning("webhook endpoint disabled", extra={"reason": recorded.disabled})
