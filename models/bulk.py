"""Bulk transfers: validate an uploaded file, start it, retry its failed pairs.

Validation is batched: the rules see every pair of the file at once (three
queries whatever the size), and the rows are stored in a few bulk inserts.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.transactions import in_transaction

from models import engine, idempotency, revert_start, settings
from models.csvfile import FILE_ROW_CODES, shown
from models.starting import ALREADY_RETRIED, BULK_IN_PROGRESS, UPLOAD_ALREADY_USED, create_transfer
from models.rules import PairCheck, Problem, check_pairs, data_types_problem, stored_choice
from models.tenancy import User
from models.transfers import (
    BulkUpload,
    BulkUploadRow,
    ItemStatus,
    Transfer,
    TransferItem,
    TransferKind,
    TransferLock,
)
from models.upload_reader import read_upload
from models.userdata import DataType


def _as_json(problems: list[Problem]) -> list[dict]:
    return [{"code": p.code, "message": p.message, "role": p.role} for p in problems]


async def create_upload(operator: User, filename: str, data: bytes) -> BulkUpload:
    """Parse and validate a file and store the preview. Transfers nothing.

    The file is read by a child process (models/upload_reader.py): the event loop never waits for it.
    """
    parsed = await read_upload(data, max_bytes=settings.MAX_UPLOAD_BYTES, max_pairs=settings.MAX_BULK_PAIRS)
    if parsed.errors:
        parsed.rows = []  # a file that cannot run is not checked row by row (it may hold 100,000 pairs)
    checks = await check_pairs(
        operator,
        [(r.source_cell, r.target_cell, r.row_number) for r in parsed.rows],
    )
    for row, check in zip(parsed.rows, checks, strict=True):
        _with_file_problems(check, row.problems)
    async with in_transaction() as db:
        upload = await BulkUpload.create(
            tenant_id=operator.tenant_id,
            uploaded_by=operator,
            filename=shown(filename)[:255] or "upload.csv",
            row_count=parsed.row_count,
            pair_count=parsed.pair_count,
            error_count=len(parsed.errors) + sum(not c.ok for c in checks),
            errors=_as_json(parsed.errors),
            people_form=parsed.people_form,
            using_db=db,
        )
        await BulkUploadRow.bulk_create(
            [
                BulkUploadRow(
                    upload=upload,
                    row_number=row.row_number,
                    source_cell=row.source_cell and row.source_cell[:255],
                    target_cell=row.target_cell and row.target_cell[:255],
                    source_id=check.source.id if check.source else None,
                    target_id=check.target.id if check.target else None,
                    errors=_as_json(check.problems),
                    has_errors=not check.ok,
                )
                for row, check in zip(parsed.rows, checks, strict=True)
            ],
            batch_size=settings.MAX_BULK_PAIRS,  # one INSERT for a full file
            using_db=db,
        )
    return upload


def _with_file_problems(check: PairCheck, problems: Sequence[Problem]) -> None:
    """Put a row's problems from the file (a NUL in a cell) first. They speak for the cell they
    are about: an ID cell holding a NUL is not also reported as an invalid user ID."""
    cells = {p.role for p in problems if p.role}
    check.problems[:] = [*problems, *(p for p in check.problems if p.role not in cells)]


async def _recheck(operator: User, upload: BulkUpload, types: Sequence[DataType]) -> list[PairCheck]:
    """Validate the stored rows against today's data and the data types chosen; store what changed.
    What the file got wrong on a row stays wrong."""
    rows = await BulkUploadRow.filter(upload_id=upload.id).order_by("row_number")
    checks = await check_pairs(
        operator,
        [(r.source_cell, r.target_cell, r.row_number) for r in rows],
        types=types,
    )
    changed = []
    for row, check in zip(rows, checks, strict=True):
        _with_file_problems(check, [Problem(**e) for e in row.errors if e["code"] in FILE_ROW_CODES])
        if _as_json(check.problems) != row.errors:
            changed.append(check)
    if changed:
        async with in_transaction() as db:
            for check in changed:
                await BulkUploadRow.filter(upload_id=upload.id, row_number=check.row_number).using_db(db).update(
                    errors=_as_json(check.problems), has_errors=not check.ok
                )
            upload.error_count = len(upload.errors) + sum(not c.ok for c in checks)
            await upload.save(using_db=db, update_fields=["error_count"])
    return checks


async def start(
    operator: User, upload: BulkUpload, idempotency_key: str | None = None, data_types: Sequence[str] | None = None
) -> tuple[Transfer | None, list[Problem]]:
    """Queue one BULK transfer with every pair of a clean upload, re-validated now,
    moving `data_types` (keys of DataType; None: every type)."""
    if invalid := data_types_problem(data_types):
        return None, [invalid]
    keys = stored_choice(data_types)
    request, answered = await idempotency.prior(
        operator, idempotency_key, "startBulkTransfer", uploadId=upload.id, **idempotency.choice(keys)
    )
    if answered is not None:
        return answered
    if upload.errors:
        return None, [_has_errors(len(upload.errors))]
    if await Transfer.exists(upload_id=upload.id):
        return None, [UPLOAD_ALREADY_USED]
    if await TransferLock.exists(tenant_id=operator.tenant_id, key=TransferLock.BULK_KEY):
        return None, [BULK_IN_PROGRESS]
    checks = await _recheck(operator, upload, engine.chosen(keys))
    failing = sum(not c.ok for c in checks)
    if failing:
        return None, [_has_errors(failing)]
    return await create_transfer(operator, TransferKind.BULK, checks, request, upload=upload, data_types=keys)


async def retry(
    operator: User, transfer: Transfer, idempotency_key: str | None = None
) -> tuple[Transfer | None, list[Problem]]:
    """A new BULK transfer with only the failed pairs of a finished transfer, moving the
    data types that transfer moves (a REVERT, for a revert's)."""
    request, answered = await idempotency.prior(operator, idempotency_key, "retryFailedTransfers", transferId=transfer.id)
    if answered is not None:
        return answered
    if not transfer.status.finished:
        return None, [Problem("TRANSFER_NOT_FINISHED", "The transfer is still queued or running.")]
    if await Transfer.exists(retry_of=transfer):
        return None, [ALREADY_RETRIED]
    failed = (
        await TransferItem.filter(transfer_id=transfer.id, status=ItemStatus.FAILED)
        .select_related("source", "target")
        .order_by("position")
    )
    if not failed:
        return None, [Problem("NOTHING_TO_RETRY", "The transfer has no failed pairs to retry.")]
    if transfer.kind is TransferKind.REVERT:
        return await revert_start.retry(operator, transfer, failed, request)
    checks = await check_pairs(
        operator,
        [(i.source.user_id, i.target.user_id, i.row_number) for i in failed],
        types=engine.chosen(transfer.data_types),
    )
    problems = [p for c in checks for p in c.problems]
    if problems:
        return None, problems
    return await create_transfer(
        operator, TransferKind.BULK, checks, request, retry_of=transfer, data_types=transfer.data_types
    )


def _has_errors(count: int) -> Problem:
    return Problem(
        "UPLOAD_HAS_ERRORS",
        f"The upload has {count} error(s); fix the file and upload it again.",
    )
