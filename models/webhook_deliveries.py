"""A delivery's attempts: claimed under a lease, recorded, retried on a schedule, given up.

The delivery row is the truth. A worker claims a due delivery for a lease
(a conditional UPDATE, so two workers never send it at once), sends it, and
records the outcome on it in one transaction: delivered; or failed, with the
next attempt's time; or given up. A worker that dies mid-send leaves a lease
that runs out; the next sweep offers the delivery again, with the same
webhook-id, so a receiver that got it twice can tell.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models import settings, webhook_secrets
from models.clock import now
from models.global_ids import to_global_id
from models.problems import Problem
from models.tenancy import User
from models.webhook_endpoints import FORBIDDEN, NOT_FOUND, fail_pending, find, may_manage
from models.webhooks import TEST_EVENT, DeliveryStatus, WebhookDelivery, WebhookEndpoint, body

log = logging.getLogger(__name__)

# Seconds from a failed attempt to the next: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h
# and 24 h; after the attempt that follows the last, the delivery is given up.
SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
JITTER = 0.1  # each wait is up to 10 % longer or shorter, so retries of many deliveries spread
MAX_RETRY_AFTER = timedelta(hours=24)
# An endpoint all of whose deliveries have failed for this long is disabled.
DISABLE_AFTER = timedelta(days=3)
# Why an endpoint whose secret no key can open is disabled, and how to mend it.
UNREADABLE_SECRET = (
    "Its secret was sealed under a key that UDT_SECRET_KEY no longer lists, so nothing can be signed: "
    "rotate the secret (rotateWebhookSecret), then enable the endpoint."
)


def lease() -> timedelta:
    """How long a claim holds a delivery: the attempt's time limit (jobs/webhook_http.py), with
    room for the worker to record its outcome on a loaded machine."""
    return timedelta(seconds=3 * settings.WEBHOOK_TIMEOUT_SECONDS)


def delivery_id(pk: int) -> str:
    """The webhook-id header: the delivery's GraphQL ID, the same on every attempt."""
    return to_global_id("WebhookDelivery", pk)


@dataclass(frozen=True)
class Claim:
    """A delivery a worker holds, and what sending it needs."""

    delivery: WebhookDelivery
    url: str
    secrets: list[str]  # the new one first during a rotation


@dataclass(frozen=True)
class Outcome:
    """What an attempt got: an HTTP status, or an error (refused, timed out, no answer)."""

    status: int | None = None
    error: str | None = None
    retry_after: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Recorded:
    """The delivery after an attempt, and whether the endpoint was disabled by it (and why)."""

    delivery: WebhookDelivery
    disabled: str | None


async def claim(pk: int) -> Claim | None:
    """Take a due, pending delivery for a lease; None when it is not due, done, or held."""
    at = now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=at)
    taken = await WebhookDelivery.filter(
        Q(id=pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=at) & free
    ).update(lease_until=at + lease())
    if not taken:
        return None
    delivery = await WebhookDelivery.get(id=pk).select_related("endpoint")
    endpoint = delivery.endpoint
    if not endpoint.enabled and delivery.event != TEST_EVENT:  # a test may check a receiver before enabling it
        await fail_pending(endpoint.id, f"The endpoint is disabled: {endpoint.disabled_reason}", None)
        return None
    try:
        secrets = [webhook_secrets.unseal(endpoint.secret)]
    except InvalidToken:
        log.error("webhook endpoint %s disabled: %s", endpoint.id, UNREADABLE_SECRET)
        async with in_transaction() as db:
            await WebhookEndpoint.filter(id=endpoint.id).using_db(db).update(enabled=False, disabled_reason=UNREADABLE_SECRET)
            await fail_pending(endpoint.id, f"The endpoint was disabled: {UNREADABLE_SECRET}", db)
        return None
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > at:
        with contextlib.suppress(InvalidToken):  # sealed under a key since dropped: only the new secret signs
            secrets.append(webhook_secrets.unseal(endpoint.previous_secret))
    return Claim(delivery, endpoint.url, secrets)


def next_wait(attempts: int, retry_after: timedelta | None) -> timedelta | None:
    """How long after failed attempt number `attempts` the next one comes (None: give up).
    A receiver's Retry-After is honoured when it asks for longer, up to a day."""
    if attempts > len(SCHEDULE):
        return None
    wait = timedelta(seconds=SCHEDULE[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER))
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return wait


def _disabling(endpoint: WebhookEndpoint, outcome: Outcome, at: datetime) -> str | None:
    if outcome.status == 410:
        return "The receiver answered 410 Gone: it wants no more deliveries."
    failing_since = endpoint.failing_since or at
    if at - failing_since >= DISABLE_AFTER:
        return f"Every delivery has failed since {failing_since.isoformat(timespec='seconds')} (3 days or more)."
    return None


async def record(held: Claim, outcome: Outcome) -> Recorded:
    """The attempt's outcome, on the delivery and its endpoint, in one transaction."""
    at = now()
    delivery = held.delivery
    async with in_transaction() as db:
        endpoint = await WebhookEndpoint.get(id=delivery.endpoint_id).using_db(db)
        delivery.attempts += 1
        delivery.last_response_status, delivery.last_error = outcome.status, outcome.error
        delivery.lease_until, delivery.next_attempt_at = None, None
        disabled = None
        counts = delivery.event != TEST_EVENT  # a test says nothing of the endpoint's health
        if outcome.ok:
            delivery.status = DeliveryStatus.DELIVERED
            endpoint.failing_since = None if counts else endpoint.failing_since
        else:
            disabled = _disabling(endpoint, outcome, at) if counts else None
            endpoint.failing_since = (endpoint.failing_since or at) if counts else endpoint.failing_since
            wait = None if disabled else next_wait(delivery.attempts, outcome.retry_after)
            if wait is None:
                delivery.status = DeliveryStatus.FAILED
            else:
                delivery.next_attempt_at = at + wait
        if disabled:
            endpoint.enabled, endpoint.disabled_reason = False, disabled
            await fail_pending(endpoint.id, f"The endpoint was disabled: {disabled}", db)
        await endpoint.save(using_db=db, update_fields=["failing_since", "enabled", "disabled_reason"])
        await delivery.save(
            using_db=db,
            update_fields=["attempts", "last_response_status", "last_error", "lease_until", "next_attempt_at", "status"],
        )
    return Recorded(delivery, disabled)


async def due(limit: int = 500) -> list[WebhookDelivery]:
    """Pending deliveries whose time has come and that no live lease holds: the sweep's to offer.

    A lease that ran out (its worker died mid-attempt) is let go first, and the delivery made
    due now: a new time is a new job ID, which the dead worker's job, still marked in progress
    in Redis, does not block."""
    at = now()
    await WebhookDelivery.filter(status=DeliveryStatus.PENDING, lease_until__lt=at).update(
        lease_until=None, next_attempt_at=at
    )
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=at)
    return await WebhookDelivery.filter(
        Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=at) & free
    ).order_by("next_attempt_at").limit(limit)


async def pending_of(transfer_ids: list[int]) -> list[WebhookDelivery]:
    return await WebhookDelivery.filter(transfer_id__in=transfer_ids, status=DeliveryStatus.PENDING)


async def redeliver(operator: User, pk: int | None) -> tuple[WebhookDelivery | None, list[Problem]]:
    """A new attempt of a delivery, now, with its webhook-id. An attempt in flight keeps its
    lease: it is the new attempt (its outcome decides what follows), never sent beside it."""
    if not may_manage(operator):
        return None, [FORBIDDEN]
    delivery = await find_delivery(operator, pk)
    if delivery is None:
        return None, [Problem("NOT_FOUND", "No such webhook delivery.")]
    delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, now()
    await delivery.save(update_fields=["status", "next_attempt_at"])
    return delivery, []


async def send_test(operator: User, endpoint_pk: int | None) -> tuple[WebhookDelivery | None, list[Problem]]:
    """A `webhook.test` delivery to the endpoint, sent like any other."""
    if not may_manage(operator):
        return None, [FORBIDDEN]
    endpoint = await find(operator, endpoint_pk)
    if endpoint is None:
        return None, [NOT_FOUND]
    data = {"endpoint": {"id": to_global_id("WebhookEndpoint", endpoint.id)}}
    delivery = await WebhookDelivery.create(
        endpoint_id=endpoint.id, event=TEST_EVENT, body=body(TEST_EVENT, data), next_attempt_at=now()
    )
    return delivery, []


async def find_delivery(operator: User, pk: int | None) -> WebhookDelivery | None:
    if pk is None:
        return None
    return await WebhookDelivery.filter(id=pk, endpoint__tenant_id=operator.tenant_id).first()
