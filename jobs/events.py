"""Transfer events on Redis Streams: one stream per transfer.

A stream entry ID is the event's `cursor`: XREAD from it resumes without loss
or repeat, and every API instance reads what any worker wrote.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict
from datetime import datetime

from redis.asyncio import Redis

from models import settings
from models.lifecycle import Event

START = "0-0"
# A bulk transfer of 2,000 pairs writes about 2,003 events; keep them all.
MAX_EVENTS = 10_000


def stream_key(transfer_id: int) -> str:
    return f"udt:transfer:{transfer_id}:events"


def _encode(event: Event) -> dict[str, str]:
    data = asdict(event)
    data["at"] = event.at.isoformat()
    return {"event": json.dumps(data)}


def _decode(fields: dict) -> Event:
    data = json.loads(fields[b"event"] if b"event" in fields else fields["event"])
    data["at"] = datetime.fromisoformat(data["at"])
    return Event(**data)


async def publish(redis: Redis, events: Iterable[Event]) -> None:
    """Append events to their transfers' streams (call after the commit)."""
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            key = stream_key(event.transfer_id)
            pipe.xadd(key, _encode(event), maxlen=MAX_EVENTS, approximate=True)
            if event.terminal:
                pipe.expire(key, settings.EVENTS_TTL_SECONDS)
        await pipe.execute()


async def last_cursor(redis: Redis, transfer_id: int) -> str:
    entries = await redis.xrevrange(stream_key(transfer_id), count=1)
    return entries[0][0].decode() if entries else START


async def read(redis: Redis, transfer_id: int, after: str, block_ms: int) -> list[tuple[str, Event]]:
    """Events after `after`, waiting up to `block_ms` for the first one."""
    found = await redis.xread({stream_key(transfer_id): after}, block=block_ms, count=500)
    return [(entry_id.decode(), _decode(fields)) for _, entries in found for entry_id, fields in entries]


async def follow(redis: Redis, transfer_id: int, after: str, block_ms: int = 5000) -> AsyncIterator[list[tuple[str, Event]]]:
    """Batches of events after `after`, forever; an empty batch every `block_ms` of silence."""
    while True:
        batch = await read(redis, transfer_id, after, block_ms)
        if batch:
            after = batch[-1][0]
        yield batch


async def since(redis: Redis, transfer_id: int, after: str) -> list[tuple[str, Event]]:
    """Every event already in the stream after `after`, without waiting."""
    entries = await redis.xrange(stream_key(transfer_id), min=f"({after}", max="+")
    return [(entry_id.decode(), _decode(fields)) for entry_id, fields in entries]
