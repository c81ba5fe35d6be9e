"""One reader of a transfer's event stream per API process, shared by every subscription here.

The first subscription of a transfer starts the reader, the last to leave stops it. It
decodes each entry once and keeps the events in commit order; a gap (lanes that commit side
by side often publish out of commit order) that stays open GAP_SECONDS is filled from the
database's record, once. Every subscription takes the events after its own last one. Each
event carries a `shared` dict for the work every subscriber would otherwise repeat
(graph/execution/shared_events.py keeps the executed result of a selection there).

Where it starts: it notes the stream's end, then reads the transfer's last event number
from the database, and serves the events numbered after it. Any event numbered after it
was committed after the stream's end was noted, so it was published after that point:
nothing falls in between (the argument graph/api/transfer_events.py makes for its snapshot).

Nobody waits for anybody: the reader appends and wakes whoever waits, and a subscription
takes what follows its last event when it is ready, so a slow one (a client that reads
slowly) delays only itself. The reader keeps the last WINDOW events, a whole bulk
transfer's; a subscription further behind (or resuming from an older cursor) reads the
record up to the window. So memory stays under 2 x WINDOW events per transfer watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobs import event_stream
from models import settings, transfer_events
from models.transfer_events import Event
from models.transfers import Transfer

log = logging.getLogger(__name__)
# Events kept per transfer: a whole bulk transfer's (one per pair, STARTED and the end).
WINDOW = settings.MAX_BULK_PAIRS + 10
BLOCK_MS = 5000  # one blocking read at a time; a guard of 2 s more catches a read that hangs
# How long a gap in the stream may stay open before the record fills it: the missing event
# (published out of commit order) usually follows within milliseconds; a worker that died
# between its commit and its publish never sends it.
GAP_SECONDS = 0.5
# How often subscribers are woken for new events: every wake-up costs each of them its way through
# graphql-core, strawberry and Starlette, however many events it carries. So the interval grows with
# the subscribers, 1 ms each, from 50 ms up to 50 subscribers to 500 ms from 500 (a progress view
# then moves twice a second), keeping their wake-ups to a small share of a core (benchmarks/RESULTS.md).
WAKE_SECONDS_MIN, WAKE_SECONDS_MAX = 0.05, 0.5
WAKE_SECONDS_PER_FOLLOWER = 0.001


@dataclass(slots=True)
class Published:
    event: Event
    shared: dict | None = field(default=None)  # None: this subscriber's alone (read from the record)


class _Tail:
    """The events of one transfer this process has, in commit order: numbers `low`..`high`."""

    def __init__(self) -> None:
        self.low = self.high = 0
        self.events: list[Published] = []
        self.ahead: dict[int, Published] = {}  # past a gap, until it fills
        self.gap_since = 0.0
        self.ready = asyncio.Event()  # `high` is known
        self.arrived = asyncio.Event()  # replaced by a fresh one at each arrival
        self.followers = 0
        self.reader: asyncio.Task | None = None
        self._woken = 0.0
        self._wake: asyncio.TimerHandle | None = None

    def start(self, last_event: int) -> None:
        self.low, self.high = last_event + 1, last_event
        self.ready.set()

    def add(self, events: Iterable[Event]) -> None:
        for e in events:
            if e.seq > self.high:
                self.ahead.setdefault(e.seq, Published(e, {}))
        before = self.high
        while (following := self.ahead.pop(self.high + 1, None)) is not None:
            self.events.append(following)
            self.high += 1
        if len(self.events) > 2 * WINDOW:  # trimmed in halves, so each event is moved about once
            cut = len(self.events) - WINDOW
            del self.events[:cut]
            self.low += cut
        now = asyncio.get_running_loop().time()
        self.gap_since = (now if self.high > before or not self.gap_since else self.gap_since) if self.ahead else 0.0
        if self.high > before and self._wake is None:
            interval = min(WAKE_SECONDS_MAX, max(WAKE_SECONDS_MIN, self.followers * WAKE_SECONDS_PER_FOLLOWER))
            self._wake = asyncio.get_running_loop().call_at(max(now, self._woken + interval), self._wake_up)

    def _wake_up(self) -> None:
        self._wake, self._woken = None, asyncio.get_running_loop().time()
        self.arrived.set()
        self.arrived = asyncio.Event()


class Follower:
    """One subscription's view of its transfer's events."""

    def __init__(self, transfer_id: int, tail: _Tail) -> None:
        self._transfer_id, self._tail = transfer_id, tail

    async def start(self) -> None:
        """Once this returns, every event from now on will be served: take the snapshot after it."""
        await self._tail.ready.wait()

    async def after(self, last: int, block_ms: int) -> list[Published]:
        """The events numbered after `last`, in order, waiting up to `block_ms` for the first;
        none if none came (the caller then asks the record, in case Redis lost some)."""
        tail, loop = self._tail, asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        while True:
            arrived = tail.arrived
            if last + 1 < tail.low:  # behind what is kept
                return [Published(e) for e in await transfer_events.recorded(self._transfer_id, last, until=tail.low - 1)]
            if last < tail.high:
                return tail.events[last + 1 - tail.low :]
            if loop.time() >= deadline:  # only now: a busy process may wake us after the deadline, events waiting
                return []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await arrived.wait()


class Fanout:
    """The readers of one API process, one per transfer that someone here is watching."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._tails: dict[int, _Tail] = {}

    @contextlib.asynccontextmanager
    async def follow(self, transfer_id: int) -> AsyncIterator[Follower]:
        tail = self._tails.get(transfer_id)
        if tail is None:
            tail = self._tails[transfer_id] = _Tail()
            tail.reader = asyncio.create_task(self._read(transfer_id, tail))
        tail.followers += 1
        try:
            yield Follower(transfer_id, tail)
        finally:
            tail.followers -= 1
            if not tail.followers:
                del self._tails[transfer_id]
                tail.reader.cancel()

    async def _read(self, transfer_id: int, tail: _Tail) -> None:
        position = await self._end(transfer_id)
        while not tail.ready.is_set():
            try:
                (last_event,) = await Transfer.filter(id=transfer_id).values_list("last_event", flat=True)
                tail.start(last_event)
            except Exception:  # the database is unwell, and so is every subscription: try again
                log.exception("could not read the last event of transfer %s", transfer_id)
                await asyncio.sleep(1)
        while True:
            try:
                position = await self._read_more(transfer_id, tail, position)
            except (RedisError, OSError, asyncio.TimeoutError):
                await asyncio.sleep(1)  # the subscribers hear nothing, and read the record
            except Exception:  # an entry that does not decode, say: never leave the subscribers without a reader
                log.exception("reading the events of transfer %s failed", transfer_id)
                await asyncio.sleep(1)

    async def _read_more(self, transfer_id: int, tail: _Tail, position: str) -> str:
        """Reads what the stream brings next, and fills a gap from the record once it is old enough."""
        loop = asyncio.get_running_loop()
        block_ms = max(1, int((GAP_SECONDS - (loop.time() - tail.gap_since)) * 1000)) if tail.ahead else BLOCK_MS
        found = await asyncio.wait_for(event_stream.read(self.redis, transfer_id, position, block_ms), block_ms / 1000 + 2)
        if found:
            position = found[-1][0]
            tail.add(e for _, e in found)
        if tail.ahead and loop.time() - tail.gap_since >= GAP_SECONDS:
            tail.add(await transfer_events.recorded(transfer_id, tail.high, until=min(tail.ahead) - 1))
            tail.gap_since = loop.time() if tail.ahead else 0.0  # whatever is still missing, try again later
        return position

    async def _end(self, transfer_id: int) -> str:
        try:
            return await asyncio.wait_for(event_stream.position(self.redis, transfer_id), BLOCK_MS / 1000)
        except (RedisError, OSError, asyncio.TimeoutError):
            return event_stream.START  # all of it, once Redis answers: what is older is left out by its number
