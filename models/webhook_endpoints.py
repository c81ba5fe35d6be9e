"""Managing a tenant's webhook endpoints: create, change, delete, rotate the secret.

Every change is checked first (the URL by models/webhook_urls.py, the event
names against models/webhooks.py); bad input is a Problem and changes nothing.
Only a tenant-wide operator (the transfer permission and no view) manages them:
an endpoint hears of every transfer of the tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.transactions import in_transaction

from models import webhook_secrets
from models.clock import now
from models.problems import Problem
from models.tenancy import User, sees_whole_tenant
from models.webhook_urls import GUARD, Guard, Refused
from models.webhooks import EVENTS, DeliveryStatus, WebhookDelivery, WebhookEndpoint

# After a rotation, the old secret signs beside the new one this long.
ROTATION_OVERLAP = timedelta(hours=24)
MAX_DESCRIPTION = 1000

FORBIDDEN = Problem(
    "FORBIDDEN", "Only an operator who may transfer and sees the whole tenant (no view) manages webhooks."
)
NOT_FOUND = Problem("NOT_FOUND", "No such webhook endpoint.")


def may_manage(operator: User) -> bool:
    return operator.may_transfer and sees_whole_tenant(operator)


def endpoints_of(operator: User):  # type: ignore[no-untyped-def]
    return WebhookEndpoint.filter(tenant_id=operator.tenant_id)


async def find(operator: User, pk: int | None) -> WebhookEndpoint | None:
    if pk is None:
        return None
    return await endpoints_of(operator).filter(id=pk).first()


async def url_problem(url: str, guard: Guard = GUARD) -> Problem | None:
    try:
        await guard.check(url)
    except Refused as refused:
        return Problem("INVALID_WEBHOOK_URL", str(refused), "url")
    return None


def events_problem(events: list[str]) -> Problem | None:
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        return Problem(
            "INVALID_WEBHOOK_EVENT", f"Unknown event {unknown[0]!r}; the events are {', '.join(EVENTS)}.", "events"
        )
    if not events:
        return Problem("INVALID_WEBHOOK_EVENT", "Subscribe to at least one event.", "events")
    if len(set(events)) != len(events):
        return Problem("INVALID_WEBHOOK_EVENT", "An event is named twice.", "events")
    return None


def description_problem(description: str | None) -> Problem | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        return Problem("INVALID_WEBHOOK_DESCRIPTION", f"A description has at most {MAX_DESCRIPTION} characters.")
    return None


async def _problems(url: str | None, events: list[str] | None, description: str | None) -> list[Problem]:
    found = [
        await url_problem(url) if url is not None else None,
        events_problem(events) if events is not None else None,
        description_problem(description),
    ]
    return [p for p in found if p is not None]


@dataclass
class Created:
    endpoint: WebhookEndpoint
    secret: str  # shown once


async def create(operator: User, url: str, events: list[str], description: str | None) -> tuple[Created | None, list[Problem]]:
    if not may_manage(operator):
        return None, [FORBIDDEN]
    if problems := await _problems(url, events, description):
        return None, problems
    secret = webhook_secrets.new_secret()
    endpoint = await WebhookEndpoint.create(
        tenant_id=operator.tenant_id, url=url, events=events, description=description,
        secret=webhook_secrets.seal(secret),
    )
    return Created(endpoint, secret), []


async def update(
    operator: User,
    pk: int | None,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> tuple[WebhookEndpoint | None, list[Problem]]:
    """Change what is given (None leaves a field as it is). Enabling clears the reason it was
    disabled and starts its 3 days of failures afresh."""
    if not may_manage(operator):
        return None, [FORBIDDEN]
    endpoint = await find(operator, pk)
    if endpoint is None:
        return None, [NOT_FOUND]
    if problems := await _problems(url, events, description):
        return None, problems
    changes: dict[str, object] = {
        name: value for name, value in (("url", url), ("events", events), ("description", description)) if value is not None
    }
    if enabled is True and not endpoint.enabled:
        changes |= {"enabled": True, "disabled_reason": None, "failing_since": None}
    async with in_transaction() as db:
        if enabled is False and endpoint.enabled:
            changes |= {"enabled": False, "disabled_reason": f"Disabled by {operator.username}."}
            await fail_pending(endpoint.id, "The endpoint was disabled.", db)
        for name, value in changes.items():
            setattr(endpoint, name, value)
        if changes:
            await endpoint.save(using_db=db, update_fields=list(changes))
    return endpoint, []


async def fail_pending(endpoint_id: int, reason: str, db) -> None:  # type: ignore[no-untyped-def]
    """A disabled endpoint's pending transfer deliveries end FAILED, saying why."""
    await WebhookDelivery.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING).using_db(db).update(
        status=DeliveryStatus.FAILED, last_error=reason, next_attempt_at=None, lease_until=None
    )


async def delete(operator: User, pk: int | None) -> tuple[int | None, list[Problem]]:
    """The endpoint and its deliveries go; returns its primary key."""
    if not may_manage(operator):
        return None, [FORBIDDEN]
    endpoint = await find(operator, pk)
    if endpoint is None:
        return None, [NOT_FOUND]
    await endpoint.delete()
    return endpoint.id, []


async def rotate(operator: User, pk: int | None) -> tuple[Created | None, list[Problem]]:
    """A new secret, shown once; the one it replaces signs beside it for ROTATION_OVERLAP."""
    if not may_manage(operator):
        return None, [FORBIDDEN]
    endpoint = await find(operator, pk)
    if endpoint is None:
        return None, [NOT_FOUND]
    secret = webhook_secrets.new_secret()
    endpoint.previous_secret, endpoint.previous_secret_until = endpoint.secret, now() + ROTATION_OVERLAP
    endpoint.secret = webhook_secrets.seal(secret)
    await endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return Created(endpoint, secret), []
