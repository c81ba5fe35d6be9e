"""Transfers: the plan, the transfer and its items, start and cancel; and the start-and-queue sequence of every start mutation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.api.download_links import DownloadLink
from graph.api.users import DataType, DataTypeCount, User, data_type_counts, show_user, show_user_or_mask, show_users
from graph.auth import links
from graph.core.enum_descriptions import described_enum
from graph.core.errors import TRANSFERS, UserError, user_errors
from graph.core.relay import AFTER, FIRST, Node, connection_of, pk_of, to_global_id
from jobs import event_stream, pair_outcomes, queueing, webhooks
from models import engine, revert_pairs, running, starting, transfers
from models.rules import Problem, check_single, data_types_problem
from models.tenancy import User as UserModel

if TYPE_CHECKING:
    from graph.core.context import Context

TransferKind = described_enum(
    transfers.TransferKind,
    "TransferKind",
    "How a transfer was started.",
    {
        "SINGLE": "One pair, by startTransfer.",
        "BULK": "The pairs of a CSV upload, or a retry of failed pairs.",
        "REVERT": "The undo of another transfer (revertOf): its succeeded pairs, each moved back.",
    },
)
TransferStatus = described_enum(
    transfers.TransferStatus,
    "TransferStatus",
    "Where a transfer is. QUEUED and RUNNING are active; the others are final.",
    {
        "QUEUED": "Waiting for a worker.",
        "RUNNING": "Pairs are being applied, one at a time.",
        "SUCCEEDED": "Every pair moved.",
        "PARTIALLY_FAILED": "Some pairs moved, some failed.",
        "FAILED": "No pair moved.",
        "CANCELLED": "Cancelled: the pairs done stay done, the rest ended CANCELLED.",
    },
)
TransferItemStatus = described_enum(
    transfers.ItemStatus,
    "TransferItemStatus",
    "Where one pair of a transfer is.",
    {
        "PENDING": "Not applied yet.",
        "SUCCEEDED": "The source's data moved to the target.",
        "FAILED": "Refused or failed; nothing of this pair changed (errorCode says why).",
        "CANCELLED": "The transfer was cancelled before this pair ran.",
    },
)
TRANSFER_ID = "The transfer's global ID (Transfer.id)."
TRANSFERS_CONNECTION = "transfers"  # what its cursors are bound to (graph/core/relay.py)

SINGLE_FIELDS = {
    "source": ["input", "sourceUserId"],
    "target": ["input", "targetUserId"],
    "key": ["input", "idempotencyKey"],
    "types": ["input", "dataTypes"],
}
IDEMPOTENCY_KEY_DESCRIPTION = (
    "Makes a resent request safe: the same operator sending the same key within 24 hours gets the "
    "transfer the first request created, whatever its status, and nothing new starts; the same key "
    "with another input is IDEMPOTENCY_KEY_REUSED. 1 to 255 printable characters."
)
DATA_TYPES_DESCRIPTION = (
    "Keys of DataType (e.g. CCR, AGENT_SCHEDULE): only these data types move, and the source keeps "
    "the others. Null or absent: every data type. Unknown or repeated keys, or an empty list, "
    "are INVALID_DATA_TYPE."
)
CONFIRMATION_REQUIRED = Problem(
    "CONFIRMATION_REQUIRED", "A transfer is permanent: send confirm: true to start it."
)


@strawberry.type(description="What a transfer does to one data type.")
class DataTypeImpact:
    data_type: DataType = strawberry.field(description="The data type.")
    moves: int = strawberry.field(description="Source records that will be reassigned to the target.")
    deletes: int = strawberry.field(description="Target records an OVERWRITE will delete (0 for COMBINE).")

    @classmethod
    def of(cls, i: engine.Impact) -> DataTypeImpact:
        return cls(data_type=DataType.of(i.data_type), moves=i.moves, deletes=i.deletes)


@strawberry.type(description="What a transfer of one pair would do, and what stops it (the confirmation window).")
class TransferPlan:
    source_user: User | None = strawberry.field(description="The source, if found in your scope.")
    target_user: User | None = strawberry.field(description="The target, if found in your scope.")
    impact: list[DataTypeImpact] = strawberry.field(
        description="Per data type chosen (every one unless dataTypes is given): records moved and deleted. "
        "Empty when a user is not found or dataTypes is invalid."
    )
    errors: list[UserError] = strawberry.field(description="Empty: the transfer may start.")


@strawberry.type(description="One pair of a transfer: a source, a target, and what happened.")
class TransferItem:
    source_pk: strawberry.Private[int]
    target_pk: strawberry.Private[int]
    row_number: int | None = strawberry.field(description="Line in the uploaded file (bulk only).")
    status: TransferItemStatus = strawberry.field(description="Where this pair is.")
    error_code: str | None = strawberry.field(description="FAILED: the stable code of why.")
    error_message: str | None = strawberry.field(description="FAILED: why, for a person.")
    moved: list[DataTypeCount] = strawberry.field(
        description="Source records reassigned to the target, per data type (REVERT pairs: records returned)."
    )
    overwritten: list[DataTypeCount] = strawberry.field(description="Target records deleted by OVERWRITE, per data type.")
    restored: list[DataTypeCount] = strawberry.field(
        description="REVERT pairs: records the original pair deleted, put back for its target, per data type."
    )
    skipped: list[DataTypeCount] = strawberry.field(
        description="REVERT pairs: records left where they are because they moved on since, per data type."
    )
    finished_at: datetime | None = strawberry.field(description="When this pair ended; null while PENDING.")

    @classmethod
    def of(cls, i: transfers.TransferItem) -> TransferItem:
        return cls(
            source_pk=i.source_id,
            target_pk=i.target_id,
            row_number=i.row_number,
            status=i.status,
            error_code=i.error_code,
            error_message=i.error_message,
            moved=data_type_counts(i.moved),
            overwritten=data_type_counts(i.overwritten),
            restored=data_type_counts(i.restored),
            skipped=data_type_counts(i.skipped),
            finished_at=i.finished_at,
        )

    @strawberry.field(description="The user whose data moves (masked when outside your view).")
    async def source_user(self, info: strawberry.Info) -> User:
        return await show_user_or_mask(info.context, self.source_pk)

    @strawberry.field(description="The user who receives it (masked when outside your view).")
    async def target_user(self, info: strawberry.Info) -> User:
        return await show_user_or_mask(info.context, self.target_pk)


TransferItemConnection = connection_of(TransferItem, "pair", "pairs", "a transfer's pairs", ", in order")


@strawberry.type(
    description="A transfer of one or more pairs (source to target), run in the background. "
    "Watch it with the transferEvents subscription."
)
class Transfer(Node):
    pk: strawberry.Private[int]
    requested_by_pk: strawberry.Private[int | None]
    model: strawberry.Private[transfers.Transfer]
    kind: TransferKind = strawberry.field(description="SINGLE, BULK, or REVERT (the undo of revertOf).")
    status: TransferStatus = strawberry.field(description="Where the transfer is.")
    created_at: datetime = strawberry.field(description="When it was started (queued).")
    started_at: datetime | None = strawberry.field(description="When a worker began it; null while QUEUED.")
    finished_at: datetime | None = strawberry.field(description="When it ended; null while active.")
    total_pairs: int = strawberry.field(description="Pairs in the transfer.")
    processed_pairs: int = strawberry.field(description="Pairs finished, succeeded or failed.")
    succeeded_pairs: int = strawberry.field(description="Pairs whose data moved.")
    failed_pairs: int = strawberry.field(description="Pairs that failed (and changed nothing).")
    message: str | None = strawberry.field(
        description='"Data Transfer Successful" or the error summary, once finished.'
    )

    @classmethod
    def of(cls, t: transfers.Transfer) -> Transfer:
        return cls(
            id=strawberry.ID(to_global_id("Transfer", t.id)),
            pk=t.id,
            requested_by_pk=t.requested_by_id,
            model=t,
            kind=t.kind,
            status=t.status,
            created_at=t.created_at,
            started_at=t.started_at,
            finished_at=t.finished_at,
            total_pairs=t.total_pairs,
            processed_pairs=t.processed_pairs,
            succeeded_pairs=t.succeeded_pairs,
            failed_pairs=t.failed_pairs,
            message=t.message,
        )

    @classmethod
    def maybe(cls, t: transfers.Transfer | None) -> Transfer | None:
        return cls.of(t) if t is not None else None

    @strawberry.field(description="The operator who started it; null when outside your view.")
    async def requested_by(self, info: strawberry.Info) -> User | None:
        return await show_user(info.context, self.requested_by_pk)

    @strawberry.field(
        description="Until when it can be reverted (revertTransfer); null: it cannot be (not finished, "
        "nothing applied, a revert itself, already reverted, or its undo window has ended)."
    )
    async def revertible_until(self, info: strawberry.Info) -> datetime | None:
        reverted = await info.context.loaders.revert_of.load(self.pk) is not None
        return revert_pairs.revertible_until(self.model, reverted)

    @strawberry.field(description="Kind REVERT: the transfer it undoes (null when outside your view).")
    async def revert_of(self, info: strawberry.Info) -> Transfer | None:
        if self.model.kind is not transfers.TransferKind.REVERT:
            return None
        original = self.model.revert_of_id or (await revert_pairs.original(self.model)).id  # a retry: through the chain
        return Transfer.maybe(await info.context.loaders.transfer.load(original))

    @strawberry.field(description="The REVERT transfer that undid this one, if any (null when outside your view).")
    async def reverted_by(self, info: strawberry.Info) -> Transfer | None:
        pk = await info.context.loaders.revert_of.load(self.pk)
        return Transfer.maybe(await info.context.loaders.transfer.load(pk)) if pk else None

    @strawberry.field(
        description="The data types this transfer moves, in catalogue order: every one, unless some were "
        "chosen (dataTypes) when it was started."
    )
    def data_types(self) -> list[DataType]:
        return [DataType.of(dt) for dt in engine.chosen(self.model.data_types)]

    @strawberry.field(description="User IDs of the source and target of every failed pair.")
    async def failed_user_ids(self, info: strawberry.Info) -> list[int]:
        return await info.context.loaders.failed_user_ids.load(self.pk)

    @strawberry.field(description="Relative URL of the CSV audit log; same Authorization header. ?all=1 for every pair.")
    def audit_log_url(self) -> str:
        return f"/transfers/{self.id}/audit.csv"

    @strawberry.field(
        permission_classes=TRANSFERS,
        description="A link to the audit log (the file auditLogUrl answers) for a plain link in a browser: "
        "no Authorization header needed.",
    )
    async def audit_log_link(
        self,
        info: strawberry.Info,
        all: Annotated[bool | None, strawberry.argument(description="Every pair; false: the failed pairs only.")] = False,
    ) -> DownloadLink:
        operator = await info.context.operator()
        file = links.AUDIT_ALL if all else links.AUDIT_FAILED
        return DownloadLink.of(links.Download(operator.id, file, transfer_pk=self.pk))

    @strawberry.field(description="The transfer's pairs, in order.")
    async def items(
        self,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
        status: Annotated[
            TransferItemStatus | None, strawberry.argument(description="Only pairs with this status.")
        ] = None,
    ) -> TransferItemConnection:
        query = transfers.TransferItem.filter(transfer_id=self.pk)
        if status is not None:
            query = query.filter(status=status)
        connection = f"items.{self.pk}"  # a cursor of this transfer's pairs only
        return await TransferItemConnection.page(
            query, connection, "position", first, after, lambda rows: [TransferItem.of(r) for r in rows]
        )


TransferConnection = connection_of(Transfer, "transfer", "transfers", order=", newest first")


@strawberry.input(description="One pair to transfer.")
class StartTransferInput:
    source_user_id: int = strawberry.field(description="User ID of the user whose data moves.")
    target_user_id: int = strawberry.field(description="User ID of the user who receives it.")
    confirm: bool = strawberry.field(description="Must be true: a transfer is permanent.")
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY_DESCRIPTION)
    data_types: list[str] | None = strawberry.field(default=None, description=DATA_TYPES_DESCRIPTION)


@strawberry.type(description="The transfer started, or why none was.")
class StartTransferPayload:
    transfer: Transfer | None = strawberry.field(description="The transfer, QUEUED; null when refused.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing started; empty on success.")


@strawberry.type(description="The transfer after the cancel, or why it could not be cancelled.")
class CancelTransferPayload:
    transfer: Transfer | None = strawberry.field(description="The transfer now; null when not found.")
    user_errors: list[UserError] = strawberry.field(description="Why it was not cancelled (e.g. already finished).")


async def find_transfer(operator: UserModel, global_id: str) -> transfers.Transfer | None:
    """A transfer the operator may see; anything else is unknown."""
    pk = pk_of(global_id, "Transfer")
    if pk is None:
        return None
    return await transfers.visible_transfers(operator).filter(id=pk).first()


async def start_and_queue(
    info: strawberry.Info,
    confirm: bool,
    unconfirmed: Callable[[], Awaitable[list[Problem]]],
    start: Callable[[], Awaitable[tuple[transfers.Transfer | None, list[Problem]]]],
    errors: Callable[[list[Problem]], list[UserError]],
) -> StartTransferPayload:
    """What every start mutation does: without confirm, what would stop it and CONFIRMATION_REQUIRED;
    with it, start (one transaction), queue after the commit, and answer with the transfer.
    A resent start (same idempotency key) is offered to the queue again: harmless (jobs/queueing.py)."""
    if not confirm:
        return StartTransferPayload(transfer=None, user_errors=errors([*await unconfirmed(), CONFIRMATION_REQUIRED]))
    transfer, problems = await start()
    if transfer is None:
        return StartTransferPayload(transfer=None, user_errors=errors(problems))
    await queueing.queue(info.context.pool, transfer)
    return StartTransferPayload(transfer=Transfer.of(transfer), user_errors=[])


async def plan(
    context: Context, source_user_id: int, target_user_id: int, data_types: list[str] | None = None
) -> TransferPlan:
    check = await check_single(await context.operator(), source_user_id, target_user_id, data_types)
    impact = []
    if check.source and check.target and data_types_problem(data_types) is None:
        types = engine.chosen(data_types)
        impact = [DataTypeImpact.of(i) for i in await engine.impact(check.source.id, check.target.id, types)]
    source, target = [next(iter(await show_users(context, [u] if u else [])), None) for u in (check.source, check.target)]
    return TransferPlan(
        source_user=source,
        target_user=target,
        impact=impact,
        errors=user_errors(check.problems, {"source": ["sourceUserId"], "target": ["targetUserId"], "types": ["dataTypes"]}),
    )


@strawberry.type
class TransferQueries:
    @strawberry.field(
        permission_classes=TRANSFERS,
        description="The confirmation window: what a transfer would do, and what stops it. Changes nothing.",
    )
    async def transfer_plan(
        self,
        info: strawberry.Info,
        source_user_id: Annotated[int, strawberry.argument(description="User ID of the source.")],
        target_user_id: Annotated[int, strawberry.argument(description="User ID of the target.")],
        data_types: Annotated[list[str] | None, strawberry.argument(description=DATA_TYPES_DESCRIPTION)] = None,
    ) -> TransferPlan:
        return await plan(info.context, source_user_id, target_user_id, data_types)

    @strawberry.field(permission_classes=TRANSFERS, description="One transfer you may see; null when none.")
    async def transfer(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description=TRANSFER_ID)],  # noqa: A002
    ) -> Transfer | None:
        return Transfer.maybe(await find_transfer(await info.context.operator(), id))

    @strawberry.field(permission_classes=TRANSFERS, description="Newest first.")
    async def transfers(
        self,
        info: strawberry.Info,
        kind: Annotated[TransferKind | None, strawberry.argument(description="Only transfers of this kind.")] = None,
        status: Annotated[
            TransferStatus | None, strawberry.argument(description="Only transfers with this status.")
        ] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> TransferConnection:
        op = await info.context.operator()
        query = transfers.visible_transfers(op)
        if kind is not None:
            query = query.filter(kind=kind)
        if status is not None:
            query = query.filter(status=status)
        return await TransferConnection.page(
            query, TRANSFERS_CONNECTION, "id", first, after, lambda rows: [Transfer.of(t) for t in rows], descending=True
        )


@strawberry.type
class TransferMutations:
    @strawberry.mutation(
        permission_classes=TRANSFERS,
        description="Queue the transfer of one user's data to another. Permanent: needs confirm: true.",
    )
    async def start_transfer(
        self,
        info: strawberry.Info,
        input: Annotated[StartTransferInput, strawberry.argument(description="The pair, and confirm: true.")],  # noqa: A002
    ) -> StartTransferPayload:
        op = await info.context.operator()

        async def unconfirmed() -> list[Problem]:
            return (await check_single(op, input.source_user_id, input.target_user_id, input.data_types)).problems

        return await start_and_queue(
            info,
            input.confirm,
            unconfirmed,
            lambda: starting.start_single(
                op, input.source_user_id, input.target_user_id, input.idempotency_key, input.data_types
            ),
            lambda problems: user_errors(problems, SINGLE_FIELDS),
        )

    @strawberry.mutation(
        permission_classes=TRANSFERS,
        description="Stop a queued or running transfer after the pair in flight; the rest end CANCELLED.",
    )
    async def cancel_transfer(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description=TRANSFER_ID)],  # noqa: A002
    ) -> CancelTransferPayload:
        found = await find_transfer(await info.context.operator(), id)
        if found is None:
            missing = UserError(code="TRANSFER_NOT_FOUND", message="No such transfer.", field=["id"])
            return CancelTransferPayload(transfer=None, user_errors=[missing])
        done, problems = await running.cancel(found)
        await event_stream.announce(info.context.pool, done)
        await webhooks.offer_ended(info.context.pool, done)
        for event in done:
            await pair_outcomes.finished(event)
        await found.refresh_from_db()
        return CancelTransferPayload(transfer=Transfer.of(found), user_errors=user_errors(problems))
