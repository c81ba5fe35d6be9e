"""Idempotent starts: the same request sent again with the same key starts nothing new.

A front end on a flaky network resends a start whose response it lost. With an
`idempotencyKey`, the second request gets the transfer the first one created
(whatever its status) instead of a second transfer, which would find the
source already empty. A key is the operator's own (an operator belongs to one
tenant, so it is the tenant's too) and lives 24 hours. The row is written in
the transaction that creates the transfer, and its unique constraint decides
between racing requests, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from models.clock import now
from models.fences.tortoise import connection
from models.rules import Problem
from models.sql import Statement
from models.tenancy import User
from models.transfers import Transfer, visible_transfers

LIFETIME = timedelta(hours=24)
MAX_LENGTH = 255

INVALID_KEY = Problem(
    "INVALID_IDEMPOTENCY_KEY",
    f"An idempotency key is 1 to {MAX_LENGTH} printable characters.",
    "key",
)
KEY_REUSED = Problem(
    "IDEMPOTENCY_KEY_REUSED",
    "This idempotency key was used in the last 24 hours for a different request; use a new key for a new request.",
    "key",
)


class IdempotencyKey(Model):
    """A start's key: which request it was (its fingerprint) and the transfer it created."""

    id = fields.IntField(primary_key=True)
    operator: fields.ForeignKeyRelation = fields.ForeignKeyField("models.User", related_name="idempotency_keys")
    key = fields.CharField(max_length=MAX_LENGTH)
    # sha256 of the canonical JSON of the mutation and its input: the same key with
    # another input is a mistake, not a retry.
    fingerprint = fields.CharField(max_length=64)
    transfer: fields.ForeignKeyRelation = fields.ForeignKeyField("models.Transfer", related_name="idempotency_keys")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_key"
        unique_together = (("operator", "key"),)


@dataclass(frozen=True)
class Request:
    """A start request that carries a key."""

    key: str
    fingerprint: str


def request(key: str | None, mutation: str, **input: object) -> Request | Problem | None:
    """The request to remember (None without a key), or INVALID_IDEMPOTENCY_KEY."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_LENGTH or not key.isprintable():
        return INVALID_KEY
    canonical = json.dumps({"mutation": mutation, "input": input}, sort_keys=True, separators=(",", ":"))
    return Request(key, hashlib.sha256(canonical.encode()).hexdigest())


def choice(keys: list[str] | None) -> dict[str, object]:
    """The data types chosen, as part of a start's input: absent when every type moves,
    so that the fingerprint of a start without a choice is what it was before there was one."""
    return {} if keys is None else {"dataTypes": keys}


Answer = tuple[Transfer | None, list[Problem]]


async def prior(operator: User, key: str | None, mutation: str, **input: object) -> tuple[Request | None, Answer | None]:
    """A start's request, and the answer it already has if any (an invalid key's refusal,
    or what a live key answered). Every start asks this first, before its own checks, so
    that a resent start gets its transfer, not USER_BUSY or UPLOAD_ALREADY_USED from it."""
    found = request(key, mutation, **input)
    if isinstance(found, Problem):
        return None, (None, [found])
    return found, (await replay(operator, found) if found else None)


def _cutoff() -> datetime:
    return now() - LIFETIME


async def replay(operator: User, req: Request) -> Answer | None:
    """What a live key already answered: its transfer, or IDEMPOTENCY_KEY_REUSED; None when
    the key is new (or older than 24 hours)."""
    found = await IdempotencyKey.filter(operator_id=operator.id, key=req.key, created_at__gt=_cutoff()).first()
    if found is None:
        return None
    if found.fingerprint != req.fingerprint:
        return None, [KEY_REUSED]
    transfer = await visible_transfers(operator).filter(id=found.transfer_id).first()
    if transfer is None:  # its users have left the operator's view since: it stays unseen
        return None, [Problem("TRANSFER_NOT_FOUND", "No such transfer.", "key")]
    transfer.replayed = True
    return transfer, []


async def forget_expired(batch: int) -> int:
    """Delete the keys past their 24 hours (a replay no longer finds them), `batch` rows per
    transaction; returns how many. Locked rows are another worker's to delete: skipped."""
    deleted = 0
    while True:
        q = Statement(connection(IdempotencyKey))
        lock = " FOR UPDATE SKIP LOCKED" if q.postgres else ""
        n = await q.run(
            f"DELETE FROM idempotency_key WHERE id IN (SELECT id FROM idempotency_key "
            f"WHERE created_at <= {q.p(_cutoff())} LIMIT {batch}{lock})"
        )
        deleted += n
        if n < batch:
            return deleted


async def remember(operator: User, req: Request, transfer: Transfer, db: BaseDBAsyncClient) -> None:
    """Write the key in the transaction creating `transfer`; a racing request with the same
    key fails this insert. A stale row of the same key (over 24 hours) gives way."""
    await IdempotencyKey.filter(operator_id=operator.id, key=req.key, created_at__lte=_cutoff()).using_db(db).delete()
    await IdempotencyKey.create(operator=operator, key=req.key, fingerprint=req.fingerprint, transfer=transfer, using_db=db)
