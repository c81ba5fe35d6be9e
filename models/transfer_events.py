"""A transfer's events: the type, its JSON record, and recording one in the caller's transaction.

Every event is recorded in the database by the transaction that caused it,
numbered in commit order (`seq`); that record is what subscribers fall back on.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from models.clock import now
from models.fences.tortoise import model_field
from models.sql import Statement
from models.transfers import EventRecord, Transfer, TransferStatus

_FINISHED = frozenset(s.value for s in TransferStatus if s.finished)  # as strings: an Event carries them so



@dataclass(frozen=True)
class Event:
    """One transfer event. `seq` numbers a transfer's events in commit order."""

    transfer_id: int
    seq: int
    type: str
    status: str
    total_pairs: int
    processed_pairs: int
    succeeded_pairs: int
    failed_pairs: int
    at: datetime
    source_user_id: int | None = None
    target_user_id: int | None = None
    error_code: str | None = None
    message: str | None = None
    # ITEM_SUCCEEDED, to the worker that applied the pair (its metrics): records moved and
    # deleted per data type. Not published: the item holds them for everyone else.
    records: tuple[dict[str, int], dict[str, int]] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, transfer: Transfer, type_: str, at: datetime | None = None, **extra: object) -> Event:
        return cls(
            transfer_id=transfer.id,
            seq=transfer.last_event,
            type=type_,
            status=TransferStatus(transfer.status).value,
            total_pairs=transfer.total_pairs,
            processed_pairs=transfer.processed_pairs,
            succeeded_pairs=transfer.succeeded_pairs,
            failed_pairs=transfer.failed_pairs,
            at=at or now(),
            **extra,  # type: ignore[arg-type]
        )

    @property
    def terminal(self) -> bool:
        return self.type == self.status and self.status in _FINISHED

    def to_json(self) -> dict:
        data = {**asdict(self), "at": self.at.isoformat()}
        del data["records"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Event:
        return cls(**{**data, "at": datetime.fromisoformat(data["at"])})


async def emit(transfer: Transfer, type_: str, db: BaseDBAsyncClient, **extra: object) -> Event:
    """Number the next event of `transfer` and record it, inside the caller's transaction."""
    await Transfer.filter(id=transfer.id).using_db(db).update(last_event=F("last_event") + 1)
    await transfer.refresh_from_db(using_db=db)
    return await record(transfer, type_, db, **extra)


async def record(transfer: Transfer, type_: str, db: BaseDBAsyncClient, **extra: Any) -> Event:
    event = Event.of(transfer, type_, **extra)
    q = Statement(db)
    data = model_field(EventRecord, "data").to_db_value(event.to_json(), None)
    await q.run(
        f"INSERT INTO transfer_event (transfer_id, seq, data) VALUES ({q.p(transfer.id)}, {q.p(event.seq)}, {q.p(data)})"
    )
    return event


# An event's fields that the transfer's row gives, once its counters have counted the event.
_COUNTED = {"seq": "last_event", **{name: name for name in ("status", "total_pairs", "processed_pairs", "succeeded_pairs", "failed_pairs")}}


def recording(q: Statement, transfer_id: int, type_: str, at: datetime, counted: str, **extra: Any) -> str:
    """SQL recording an event whose counted fields the database reads from `counted`, the table
    or CTE of the transfer's row (the caller may add a WHERE), so a pair counts and records at once.

    The database builds the JSON that `Event.to_json` writes for the same event: the fields the
    caller decides (with Event's defaults), merged with the counted ones from the row.
    """
    own = {f.name: f.default for f in fields(Event) if f.default is not MISSING and f.name != "records"}
    own |= {"transfer_id": transfer_id, "type": type_, **extra, "at": at.isoformat()}
    pairs = ", ".join(f"'{name}', {column}" for name, column in _COUNTED.items())
    decided = q.p(json.dumps(own))
    if q.postgres:
        data = f"CAST({decided} AS jsonb) || jsonb_build_object({pairs})"
    else:
        data = f"json_patch({decided}, json_object({pairs}))"
    return f"INSERT INTO transfer_event (transfer_id, seq, data) SELECT id, last_event, {data} FROM {counted}"


async def recorded(transfer_id: int, after: int, until: int | None = None) -> list[Event]:
    """The transfer's events numbered after `after` (up to `until`), in order: the record."""
    query = EventRecord.filter(transfer_id=transfer_id, seq__gt=after)
    if until is not None:
        query = query.filter(seq__lte=until)
    return [Event.from_json(row) for row in await query.order_by("seq").values_list("data", flat=True)]
