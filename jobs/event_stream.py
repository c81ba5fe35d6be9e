"""Transfer events on Redis Streams: one stream per transfer, the live channel.

Every event is also recorded in the database by the transaction that caused
it, numbered in commit order (`Event.seq`). The stream carries them to every
API instance at once; a subscriber that sees a gap, or hears nothing for a
while, reads the record instead. So Redis makes events fast, never lossy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobs import metrics
from models import settings
from models.transfer_events import Event

log = logging.getLogger(__name__)
START = "0-0"
# A bulk transfer of 2,000 pairs writes about 2,003 events.
MAX_EVENTS = 10_000


def stream_key(transfer_id: int) -> str:
    return f"udt:transfer:{transfer_id}:events"


async def publish(redis: Redis, events: Iterable[Event]) -> None:
    """Append events to their transfers' streams (call after the commit), in one MULTI/EXEC:
    a reader sees all of a commit's events at once (Redis answers a blocked read after EXEC)."""
    async with redis.pipeline(transaction=True) as pipe:
        for event in events:
            key = stream_key(event.transfer_id)
            pipe.xadd(key, {"event": json.dumps(event.to_json())}, maxlen=MAX_EVENTS, approximate=True)
            if event.terminal:
                pipe.expire(key, settings.EVENTS_TTL_SECONDS)
        await pipe.execute()


async def announce(redis: Redis, events: list[Event]) -> None:
    """Publish, and survive a Redis hiccup: the events are recorded in the database,
    and subscribers read the record when the stream falls silent."""
    try:
        await publish(redis, events)
        metrics.events_published([e.type for e in events])
    except RedisError:
        log.warning("could not publish %d event(s); subscribers will read them from the database", len(events))


async def position(redis: Redis, transfer_id: int) -> str:
    """The stream's current end: read from here to get only what comes next."""
    entries = await redis.xrevrange(stream_key(transfer_id), count=1)
    return entries[0][0].decode() if entries else START


async def read(redis: Redis, transfer_id: int, after: str, block_ms: int) -> list[tuple[str, Event]]:
    """Entries published after stream position `after`, as (position, event), waiting up to
    `block_ms` for the first. In publish order, which is not always seq order."""
    found = await redis.xread({stream_key(transfer_id): after}, block=block_ms, count=500)
    return [(entry.decode(), Event.from_json(json.loads(fields[b"event"]))) for _, batch in found for entry, fields in batch]
