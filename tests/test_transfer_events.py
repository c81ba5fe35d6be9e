"""A transfer event's record is one JSON, whether Python writes it or the database builds it."""

from __future__ import annotations

import pytest
from tortoise.transactions import in_transaction

from models import starting
from models.clock import now
from models.sql import Statement
from models.transfer_events import Event, record, recording
from models.transfers import EventRecord, Transfer, TransferStatus
from tests.support import World

# Every kind of event, with the fields its caller decides.
KINDS = {
    "STARTED": {},
    "ITEM_SUCCEEDED": {"source_user_id": 10, "target_user_id": 20, "message": "Transferred the data ..."},
    "ITEM_FAILED": {"source_user_id": 10, "target_user_id": 20, "error_code": "USER_BUSY", "message": "Busy."},
    **{s.value: {"message": f"{s.value.title()}."} for s in TransferStatus if s.finished},
}


async def _stored(transfer_id: int, seq: int) -> dict:
    return await EventRecord.get(transfer_id=transfer_id, seq=seq).values_list("data", flat=True)


@pytest.mark.parametrize("kind", KINDS)
async def test_an_events_record_built_in_sql_is_the_json_python_writes(world: World, kind: str) -> None:
    await world.give(10, "CCR")
    transfer, problems = await starting.start_single(world.users[1], 10, 20)
    assert problems == []
    status = kind if kind in {s.value for s in TransferStatus} else "RUNNING"
    await Transfer.filter(id=transfer.id).update(
        status=status, total_pairs=5, processed_pairs=3, succeeded_pairs=2, failed_pairs=1, last_event=7
    )
    await transfer.refresh_from_db()
    at = now()

    async with in_transaction() as db:
        written = await record(transfer, kind, db, at=at, **KINDS[kind])
    by_python = await _stored(transfer.id, 7)
    await EventRecord.filter(transfer_id=transfer.id, seq=7).delete()
    async with in_transaction() as db:
        q = Statement(db)
        await q.run(recording(q, transfer.id, kind, at, "transfer", **KINDS[kind]) + f" WHERE id = {q.p(transfer.id)}")
    by_sql = await _stored(transfer.id, 7)

    assert by_sql == by_python == written.to_json()
    assert Event.from_json(by_sql) == written
    assert (written.seq, written.status, written.processed_pairs, written.failed_pairs) == (7, status, 3, 1)
