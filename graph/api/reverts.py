"""Undo: the revert plan, and the mutation that starts a revert."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.api.transfers import (
    CONFIRMATION_REQUIRED,
    IDEMPOTENCY_KEY_DESCRIPTION,
    TRANSFER_ID,
    StartTransferPayload,
    Transfer,
    find_transfer,
    start_and_queue,
)
from graph.api.users import DataType, User, show_user_or_mask
from graph.core.errors import TRANSFERS, ClientError, UserError
from models import revert_pairs, revert_start
from models.rules import Problem

NOT_FOUND = "No such transfer."


@strawberry.type(description="What a revert does to one data type, summed over the pairs it would revert.")
class RevertImpact:
    data_type: DataType = strawberry.field(description="The data type.")
    returns: int = strawberry.field(description="Records that go back to the original source.")
    restores: int = strawberry.field(
        description="Records an OVERWRITE deleted that are put back for the original target."
    )
    skipped: int = strawberry.field(
        description="Journaled records that have moved on since (deleted, or no longer the target's): left alone."
    )


@strawberry.type(description="A pair of the transfer that cannot be reverted now, and why.")
class RevertConflict:
    source_pk: strawberry.Private[int]
    target_pk: strawberry.Private[int]
    row_number: int | None = strawberry.field(description="Line of the pair in the uploaded file (bulk only).")
    code: str = strawberry.field(description="Stable code, e.g. REVERT_CONFLICT, USER_BUSY or TENANT_ADMIN.")
    message: str = strawberry.field(description="Why, for a person; names the data type of a REVERT_CONFLICT.")

    @strawberry.field(description="The original source: the user the data would go back to.")
    async def source_user(self, info: strawberry.Info) -> User:
        return await show_user_or_mask(info.context, self.source_pk)

    @strawberry.field(description="The original target: the user the data would go back from.")
    async def target_user(self, info: strawberry.Info) -> User:
        return await show_user_or_mask(info.context, self.target_pk)


@strawberry.type(description="What reverting a transfer would do now, and what stops it. Changes nothing.")
class RevertPlan:
    transfer: Transfer = strawberry.field(description="The transfer to revert.")
    impact: list[RevertImpact] = strawberry.field(
        description="Per data type, totals over every pair that would be reverted."
    )
    conflicts: list[RevertConflict] = strawberry.field(
        description="Pairs that cannot be reverted now, and why; the others can."
    )
    errors: list[UserError] = strawberry.field(description="Empty: the revert may start.")

    @classmethod
    def of(cls, found: revert_start.Plan) -> RevertPlan:
        return cls(
            transfer=Transfer.of(found.transfer),
            impact=[
                RevertImpact(data_type=DataType.of(dt), returns=r, restores=s, skipped=k)
                for dt, r, s, k in revert_pairs.impact_totals(found.reverting)
            ],
            conflicts=[
                RevertConflict(
                    source_pk=p.item.source_id,
                    target_pk=p.item.target_id,
                    row_number=p.item.row_number,
                    code=problem.code,
                    message=problem.message,
                )
                for p in found.pairs
                for problem in p.conflicts
            ],
            errors=_errors(found.errors, ["transferId"]),
        )


@strawberry.input(description="The transfer to revert, and confirm: true.")
class RevertTransferInput:
    transfer_id: strawberry.ID = strawberry.field(description=TRANSFER_ID)
    confirm: bool = strawberry.field(description="Must be true: a revert moves data like a transfer.")
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY_DESCRIPTION)


def _errors(problems: list[Problem], path: list[str]) -> list[UserError]:
    """Every refusal is about the transfer named, but for the confirmation and the key."""
    return [
        UserError(
            code=p.code,
            message=p.message,
            field=None if p is CONFIRMATION_REQUIRED else ["input", "idempotencyKey"] if p.role == "key" else path,
        )
        for p in problems
    ]


@strawberry.type
class RevertQueries:
    @strawberry.field(
        permission_classes=TRANSFERS,
        description="What reverting a finished transfer would do now, and what stops it. Changes nothing.",
    )
    async def revert_plan(
        self,
        info: strawberry.Info,
        transfer_id: Annotated[strawberry.ID, strawberry.argument(description=TRANSFER_ID)],
    ) -> RevertPlan:
        op = await info.context.operator()
        found = await find_transfer(op, transfer_id)
        if found is None:
            raise ClientError("TRANSFER_NOT_FOUND", NOT_FOUND)
        return RevertPlan.of(await revert_start.plan(op, found))


@strawberry.type
class RevertMutations:
    @strawberry.mutation(
        permission_classes=TRANSFERS,
        description="Undo a finished transfer within its undo window (Transfer.revertibleUntil): queues a "
        "transfer of kind REVERT that moves each succeeded pair back. Needs confirm: true.",
    )
    async def revert_transfer(
        self,
        info: strawberry.Info,
        input: Annotated[RevertTransferInput, strawberry.argument(description="The transfer, and confirm: true.")],  # noqa: A002
    ) -> StartTransferPayload:
        op = await info.context.operator()
        found = await find_transfer(op, input.transfer_id)
        if found is None:
            missing = UserError(code="TRANSFER_NOT_FOUND", message=NOT_FOUND, field=["input", "transferId"])
            return StartTransferPayload(transfer=None, user_errors=[missing])

        async def unconfirmed() -> list[Problem]:
            return (await revert_start.plan(op, found)).errors

        return await start_and_queue(
            info,
            input.confirm,
            unconfirmed,
            lambda: revert_start.start(op, found, input.idempotency_key),
            lambda problems: _errors(problems, ["input", "transferId"]),
        )
