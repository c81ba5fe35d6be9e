"""Bulk transfers by CSV: upload and preview, start, retry, and the active one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload
from tortoise.expressions import Subquery

from graph.api.transfers import (
    DATA_TYPES_DESCRIPTION,
    IDEMPOTENCY_KEY_DESCRIPTION,
    DataTypeImpact,
    TRANSFER_ID,
    StartTransferPayload,
    Transfer,
    find_transfer,
    start_and_queue,
)
from graph.api.users import User, show_user
from graph.core.errors import TRANSFERS, ClientError, UserError, user_errors
from graph.core.relay import AFTER, FIRST, Node, connection_of, pk_of, to_global_id
from graph.execution import telemetry
from models import bulk, engine, settings
from models.csvfile import as_written, source_and_target
from models.rules import Problem, data_types_problem
from models.tenancy import User as UserModel
from models.transfers import TransferLock, visible_transfers, visible_uploads
from models.transfers import BulkUpload as UploadModel
from models.transfers import BulkUploadRow as RowModel


def _row_fields(people_form: bool) -> dict[str, list[str]]:
    """Which cell a row error is about: the one that names the source, or the target, in this form."""
    source, target = source_and_target("fromUserId", "toUserId", people_form)
    return {"source": [source], "target": [target]}


def _problems(stored: list[dict]) -> list[Problem]:
    return [Problem(e["code"], e["message"], e.get("role")) for e in stored]


@strawberry.type(description="One row of an uploaded file: the pair it asks for, and what is wrong with it.")
class BulkUploadRow:
    source_pk: strawberry.Private[int | None]
    target_pk: strawberry.Private[int | None]
    row_number: int = strawberry.field(description="Line in the file (the header is line 1).")
    from_user_id: str | None = strawberry.field(
        description="The From User ID cell as written (Source User ID in the pairs form)."
    )
    to_user_id: str | None = strawberry.field(
        description="The To User ID cell as written (Target User ID in the pairs form)."
    )
    errors: list[UserError] = strawberry.field(description="Why this row cannot be transferred; empty: it can.")

    @classmethod
    def of(cls, r: RowModel, people_form: bool) -> BulkUploadRow:
        from_cell, to_cell = as_written(r.source_cell, r.target_cell, people_form)
        return cls(
            source_pk=r.source_id,
            target_pk=r.target_id,
            row_number=r.row_number,
            from_user_id=from_cell,
            to_user_id=to_cell,
            errors=user_errors(_problems(r.errors), _row_fields(people_form)),
        )

    @strawberry.field(
        description="What this pair would do now, per data type: the source's records that move, "
        "and the target's that an OVERWRITE deletes. Empty until both users are resolved. "
        "Invalid dataTypes are a GraphQL error with code INVALID_DATA_TYPE."
    )
    async def impact(
        self,
        info: strawberry.Info,
        data_types: Annotated[list[str] | None, strawberry.argument(description=DATA_TYPES_DESCRIPTION)] = None,
    ) -> list[DataTypeImpact]:
        if invalid := data_types_problem(data_types):
            raise ClientError(invalid.code, invalid.message)
        if not (self.source_pk and self.target_pk):
            return []
        source, target = await info.context.loaders.owned.load_many([self.source_pk, self.target_pk])
        return [DataTypeImpact.of(i) for i in engine.combine(source, target, engine.chosen(data_types))]

    @strawberry.field(description="The user whose data moves away (null when not found or not visible).")
    async def source_user(self, info: strawberry.Info) -> User | None:
        return await show_user(info.context, self.source_pk)

    @strawberry.field(description="The user who receives the data (null when not found or not visible).")
    async def target_user(self, info: strawberry.Info) -> User | None:
        return await show_user(info.context, self.target_pk)


BulkUploadRowConnection = connection_of(BulkUploadRow, "row", "rows", "an upload's rows", ", in file order")


@strawberry.type(description="A checked CSV file of pairs: its preview, and the bulk transfer it may start.")
class BulkUpload(Node):
    pk: strawberry.Private[int]
    people_form: strawberry.Private[bool]
    filename: str = strawberry.field(description="The uploaded file's name.")
    created_at: datetime = strawberry.field(description="When it was uploaded.")
    row_count: int = strawberry.field(description="Data rows in the file.")
    pair_count: int = strawberry.field(description="Rows that request a transfer.")
    error_count: int = strawberry.field(description="File-level errors + rows with at least one error.")
    errors: list[UserError] = strawberry.field(description="File-level errors.")

    @classmethod
    def of(cls, u: UploadModel) -> BulkUpload:
        return cls(
            id=strawberry.ID(to_global_id("BulkUpload", u.id)),
            pk=u.id,
            people_form=u.people_form,
            filename=u.filename,
            created_at=u.created_at,
            row_count=u.row_count,
            pair_count=u.pair_count,
            error_count=u.error_count,
            errors=user_errors(_problems(u.errors)),
        )

    @strawberry.field(description="The rows that request a transfer or carry an error, in file order.")
    async def rows(
        self,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
        only_errors: Annotated[bool | None, strawberry.argument(description="Only rows with errors.")] = False,
    ) -> BulkUploadRowConnection:
        query = RowModel.filter(upload_id=self.pk)
        if only_errors:
            query = query.filter(has_errors=True)
        connection = f"rows.{self.pk}"  # a cursor of this upload's rows only
        return await BulkUploadRowConnection.page(
            query, connection, "row_number", first, after, lambda rows: [BulkUploadRow.of(r, self.people_form) for r in rows]
        )

    @strawberry.field(description="The transfer this upload started, if any.")
    async def transfer(self, info: strawberry.Info) -> Transfer | None:
        operator = await info.context.operator()
        return Transfer.maybe(await visible_transfers(operator).filter(upload_id=self.pk).first())


@strawberry.type(description="The checked upload, or why the file was not read at all.")
class UploadBulkTransferFilePayload:
    upload: BulkUpload | None = strawberry.field(description="The stored preview; null when the file is refused.")
    user_errors: list[UserError] = strawberry.field(description="File-level errors (row errors are on the rows).")


@strawberry.input(description="The upload whose pairs to transfer.")
class StartBulkTransferInput:
    upload_id: strawberry.ID = strawberry.field(description="The upload's global ID (BulkUpload.id).")
    confirm: bool = strawberry.field(description="Must be true: a transfer is permanent.")
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY_DESCRIPTION)
    data_types: list[str] | None = strawberry.field(default=None, description=DATA_TYPES_DESCRIPTION)


START_FIELDS = {"key": ["input", "idempotencyKey"], "types": ["input", "dataTypes"]}


async def _nothing_else() -> list[Problem]:
    """A retry is checked when it starts: unconfirmed, it only needs its confirmation."""
    return []


async def find_upload(operator: UserModel, global_id: str) -> UploadModel | None:
    pk = pk_of(global_id, "BulkUpload")
    return await visible_uploads(operator).filter(id=pk).first() if pk else None


@strawberry.type
class BulkQueries:
    @strawberry.field(permission_classes=TRANSFERS, description="One upload you may see; null when none.")
    async def bulk_upload(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The upload's global ID.")],  # noqa: A002
    ) -> BulkUpload | None:
        found = await find_upload(await info.context.operator(), id)
        return BulkUpload.of(found) if found else None

    @strawberry.field(permission_classes=TRANSFERS, description="The tenant's queued or running bulk transfer.")
    async def active_bulk_transfer(self, info: strawberry.Info) -> Transfer | None:
        op = await info.context.operator()
        # Whichever holds the tenant's one bulk slot: a bulk transfer, or the revert of one.
        holder = TransferLock.filter(tenant_id=op.tenant_id, key=TransferLock.BULK_KEY).values("transfer_id")
        return Transfer.maybe(await visible_transfers(op).filter(id__in=Subquery(holder)).first())


@strawberry.type
class BulkMutations:
    @strawberry.mutation(
        permission_classes=TRANSFERS,
        description="Check a filled-in people file (or a Source/Target file) and store its preview. Transfers nothing.",
    )
    async def upload_bulk_transfer_file(
        self,
        info: strawberry.Info,
        file: Annotated[
            Upload, strawberry.argument(description="The CSV, as a file part of a GraphQL multipart request.")
        ],
    ) -> UploadBulkTransferFilePayload:
        if not isinstance(file, UploadFile):  # Upload accepts any JSON value; only a multipart file part is a file
            problem = Problem("INVALID_FILE", "Send the file as a multipart file part (GraphQL multipart request).")
            return UploadBulkTransferFilePayload(upload=None, user_errors=user_errors([problem]))
        data = await file.read(settings.MAX_UPLOAD_BYTES + 1)
        stored = await bulk.create_upload(await info.context.operator(), file.filename or "upload.csv", data)
        telemetry.upload_checked(stored)
        upload = BulkUpload.of(stored)
        return UploadBulkTransferFilePayload(upload=upload, user_errors=upload.errors)

    @strawberry.mutation(
        permission_classes=TRANSFERS,
        description="Queue a BULK transfer of every pair of an upload, re-validated now. Needs confirm: true.",
    )
    async def start_bulk_transfer(
        self,
        info: strawberry.Info,
        input: Annotated[StartBulkTransferInput, strawberry.argument(description="The upload, and confirm: true.")],  # noqa: A002
    ) -> StartTransferPayload:
        op = await info.context.operator()
        upload = await find_upload(op, input.upload_id)
        if upload is None:
            missing = UserError(code="UPLOAD_NOT_FOUND", message="No such upload.", field=["input", "uploadId"])
            return StartTransferPayload(transfer=None, user_errors=[missing])

        async def unconfirmed() -> list[Problem]:
            invalid = data_types_problem(input.data_types)
            return [invalid] if invalid else []

        return await start_and_queue(
            info,
            input.confirm,
            unconfirmed,
            lambda: bulk.start(op, upload, input.idempotency_key, input.data_types),
            lambda problems: user_errors(problems, START_FIELDS),
        )

    @strawberry.mutation(
        permission_classes=TRANSFERS,
        description="Start a new BULK transfer with only the failed pairs of a finished transfer. Needs confirm: true.",
    )
    async def retry_failed_transfers(
        self,
        info: strawberry.Info,
        transfer_id: Annotated[strawberry.ID, strawberry.argument(description="The finished transfer: " + TRANSFER_ID)],
        confirm: Annotated[bool, strawberry.argument(description="Must be true: a transfer is permanent.")],
        idempotency_key: Annotated[str | None, strawberry.argument(description=IDEMPOTENCY_KEY_DESCRIPTION)] = None,
    ) -> StartTransferPayload:
        op = await info.context.operator()
        previous = await find_transfer(op, transfer_id)
        if previous is None:
            return StartTransferPayload(
                transfer=None,
                user_errors=[UserError(code="TRANSFER_NOT_FOUND", message="No such transfer.", field=["transferId"])],
            )
        return await start_and_queue(
            info,
            confirm,
            _nothing_else,
            lambda: bulk.retry(op, previous, idempotency_key),
            lambda problems: user_errors(problems, {"key": ["idempotencyKey"]}),
        )
