"""Starting a transfer: the transfer, its idempotency key, its items and its lock rows, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import engine, idempotency, leases, revert_pairs, settings
from models.rules import PairCheck, Problem, check_pairs, data_types_problem, describe, stored_choice
from models.tenancy import User
from models.transfers import Transfer, TransferItem, TransferKind, TransferLock

UPLOAD_ALREADY_USED = Problem(
    "UPLOAD_ALREADY_USED", "This upload has already started a transfer; upload the file again to run it again."
)
ALREADY_RETRIED = Problem(
    "ALREADY_RETRIED", "The failed pairs of this transfer were already retried; retry that transfer instead."
)
BULK_IN_PROGRESS = Problem("BULK_TRANSFER_IN_PROGRESS", "Another bulk transfer of this tenant is queued or running.")


async def create_transfer(
    operator: User,
    kind: TransferKind,
    pairs: Sequence[PairCheck],
    request: idempotency.Request | None = None,
    *,
    bulk: bool | None = None,
    reverts: Sequence[int] | None = None,
    **fields: object,
) -> tuple[Transfer | None, list[Problem]]:
    """Insert the transfer, its idempotency key, its items and its lock rows in one transaction.

    `bulk` (default: a BULK kind) takes the tenant's one bulk slot and several lanes;
    `reverts` names, per pair, the original pair a REVERT item plays back.

    The unique constraints decide races: a request whose key another request with
    the key has just used gets that request's transfer; a user already in a queued
    or running transfer, or a second bulk transfer of the tenant, fails the insert,
    and nothing is created.
    """
    # Always taken in the same order (bulk first, then users by key), so two
    # racing starts collide on a unique constraint instead of deadlocking.
    locks = sorted({TransferLock.user_key(u.id) for c in pairs for u in (c.source, c.target) if u is not None})
    bulk = kind is TransferKind.BULK if bulk is None else bulk
    if bulk:
        locks.insert(0, TransferLock.BULK_KEY)
    lanes = leases.lane_count(bulk, len(pairs))
    try:
        async with in_transaction() as db:
            transfer = await Transfer.create(
                tenant_id=operator.tenant_id,
                kind=kind,
                requested_by=operator,
                total_pairs=len(pairs),
                # A revert is not journaled: it cannot itself be reverted.
                journaled=settings.REVERT_DAYS > 0 and kind is not TransferKind.REVERT,
                using_db=db,
                **fields,
            )
            if request is not None:  # first: racing requests with one key meet here, before the locks
                await idempotency.remember(operator, request, transfer, db)
            await leases.create(transfer.id, lanes, db)
            await TransferItem.bulk_create(
                [
                    TransferItem(
                        transfer=transfer,
                        position=i,
                        lane=i % lanes,
                        row_number=c.row_number,
                        source_id=c.source.id,  # type: ignore[union-attr]
                        target_id=c.target.id,  # type: ignore[union-attr]
                        reverts_id=reverts[i] if reverts else None,
                    )
                    for i, c in enumerate(pairs)
                ],
                batch_size=500,
                using_db=db,
            )
            await TransferLock.bulk_create(
                [TransferLock(tenant_id=operator.tenant_id, key=k, transfer=transfer) for k in locks],
                batch_size=1000,
                using_db=db,
            )
    except IntegrityError:
        if request is not None and (answered := await idempotency.replay(operator, request)) is not None:
            return answered  # the same request, sent twice at once: both get the one transfer
        return None, await _lost_race(operator, locks, fields)
    return transfer, []


async def _lost_race(operator: User, keys: list[str], fields: dict[str, object]) -> list[Problem]:
    """Say which unique constraint decided against this start."""
    for name, problem in (("upload", UPLOAD_ALREADY_USED), ("retry_of", ALREADY_RETRIED), ("revert_of", revert_pairs.ALREADY_REVERTED)):
        if fields.get(name) is not None and await Transfer.exists(**{name: fields[name]}):
            return [problem]
    taken = set(
        await TransferLock.filter(tenant_id=operator.tenant_id, key__in=keys).values_list("key", flat=True)
    )
    if TransferLock.BULK_KEY in taken:
        return [BULK_IN_PROGRESS]
    problems = [
        Problem("USER_BUSY", f"User {describe(user)} is in a transfer that is queued or running.")
        for user in await User.filter(id__in=_lock_pks(taken))
    ]
    # The other transfer may have finished in between: still, this start lost the race.
    return problems or [Problem("USER_BUSY", "A user of this transfer is in a transfer that is queued or running.")]


def _lock_pks(keys: set[str]) -> list[int]:
    return [int(k.split(":", 1)[1]) for k in keys if k.startswith("user:")]


async def start_single(
    operator: User,
    source_user_id: int,
    target_user_id: int,
    idempotency_key: str | None = None,
    data_types: Sequence[str] | None = None,
) -> tuple[Transfer | None, list[Problem]]:
    """Queue one pair, moving `data_types` (keys of DataType; None: every type)."""
    if invalid := data_types_problem(data_types):
        return None, [invalid]
    keys = stored_choice(data_types)
    request, answered = await idempotency.prior(
        operator,
        idempotency_key,
        "startTransfer",
        sourceUserId=source_user_id,
        targetUserId=target_user_id,
        **idempotency.choice(keys),
    )
    if answered is not None:
        return answered
    (check,) = await check_pairs(operator, [(source_user_id, target_user_id, None)], types=engine.chosen(keys))
    if not check.ok:
        return None, check.problems
    return await create_transfer(operator, TransferKind.SINGLE, [check], request, data_types=keys)

