"""Starting a revert: the plan an operator sees, the start, and the retry of a revert.

The revert runs like any transfer (lanes, leases, events, cancel, retry); its
items are the original's succeeded pairs with the roles swapped: the data goes
back from the original target (the item's source) to the original source.
"""

from __future__ import annotations

from dataclasses import dataclass

from models import idempotency, revert_pairs
from models.starting import BULK_IN_PROGRESS, create_transfer
from models.revert_pairs import PairEffect
from models.rules import PairCheck, Problem, check_pairs
from models.tenancy import User
from models.transfers import Transfer, TransferItem, TransferKind, TransferLock


@dataclass
class Plan:
    transfer: Transfer
    pairs: list[PairEffect]  # every succeeded pair; `conflicts` says which cannot be reverted now
    errors: list[Problem]  # empty: the revert may start

    @property
    def reverting(self) -> list[PairEffect]:
        return [p for p in self.pairs if not p.conflicts]


async def plan(operator: User, transfer: Transfer) -> Plan:
    """What reverting `transfer` would do now, per pair, and what stops it. Changes nothing."""
    refused = revert_pairs.refusal(transfer, await Transfer.exists(revert_of=transfer))
    if refused:
        return Plan(transfer, [], [refused])
    pairs = await revert_pairs.effects(await revert_pairs.succeeded_pairs(transfer))
    checks = await _swapped_checks(operator, [p.item for p in pairs])
    errors: list[Problem] = []
    for effect, check in zip(pairs, checks, strict=True):
        effect.conflicts[:0] = check.problems
        # A busy user holds the start back (its lock row would collide), not just the pair.
        errors += [p for p in check.problems if p.code == "USER_BUSY" and p not in errors]
    if transfer.kind is TransferKind.BULK and await TransferLock.exists(
        tenant_id=operator.tenant_id, key=TransferLock.BULK_KEY
    ):
        errors.insert(0, BULK_IN_PROGRESS)
    return Plan(transfer, pairs, errors)


async def _swapped_checks(operator: User, originals: list[TransferItem]) -> list[PairCheck]:
    """The transfer rules for each original pair played backwards (NOTHING_TO_TRANSFER aside:
    a revert may have only deleted records to put back)."""
    checks = await check_pairs(
        operator,
        [(i.target.user_id, i.source.user_id, i.row_number) for i in originals],
        sources_checked_by_engine=True,
    )
    for check, item in zip(checks, originals, strict=True):
        check.source, check.target = item.target, item.source  # known even when the rules hide them
    return checks


async def start(
    operator: User, transfer: Transfer, idempotency_key: str | None = None
) -> tuple[Transfer | None, list[Problem]]:
    """Queue the REVERT of a finished transfer: one pair for each of its succeeded pairs.

    Pairs that conflict now are started too and fail on their turn with the reason,
    so that the audit log of the revert names every pair; the rest go on.
    """
    request, answered = await idempotency.prior(operator, idempotency_key, "revertTransfer", transferId=transfer.id)
    if answered is not None:
        return answered
    found = await plan(operator, transfer)
    if found.errors:
        return None, found.errors
    originals = [p.item for p in found.pairs]
    return await create_transfer(
        operator,
        TransferKind.REVERT,
        await _swapped_checks(operator, originals),
        request,
        bulk=transfer.kind is TransferKind.BULK,
        reverts=[i.id for i in originals],
        revert_of=transfer,
        data_types=transfer.data_types,
    )


async def retry(
    operator: User, transfer: Transfer, failed: list[TransferItem], request: idempotency.Request | None
) -> tuple[Transfer | None, list[Problem]]:
    """A new REVERT with the failed pairs of a revert, while the original's window lasts."""
    original = await revert_pairs.original(transfer)
    refused = revert_pairs.refusal(original, reverted=False)  # it is: by `transfer`
    if refused:
        return None, [refused]
    checks = await check_pairs(
        operator, [(i.source.user_id, i.target.user_id, i.row_number) for i in failed], sources_checked_by_engine=True
    )
    problems = [p for c in checks for p in c.problems]
    if problems:
        return None, problems
    return await create_transfer(
        operator,
        TransferKind.REVERT,
        checks,
        request,
        bulk=original.kind is TransferKind.BULK,
        reverts=[i.reverts_id for i in failed],
        retry_of=transfer,
        data_types=transfer.data_types,
    )
