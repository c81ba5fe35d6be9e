"""Many subscribers of one transfer in one API process: one reader of its stream shares the events,
each subscriber still gets every event once, in commit order, at its own pace, through its own view."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from gql import GraphQLRequest

from graph.api.transfer_events import event_cursor, watch
from graph.core.relay import to_global_id
from graph.live import fanout
from graph.live.fanout import Fanout
from jobs import event_stream
from jobs import transfer as transfer_jobs
from models import bulk, running
from models.transfer_events import Event
from models.transfers import Transfer
from tests.support import LEGACY_WS, TRANSPORT_WS, Api, World

PAIRS = b"Source User ID,Target User ID\n10,20\n11,21\n12,22\n"
EVERYTHING = ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "ITEM_SUCCEEDED", "ITEM_SUCCEEDED", "SUCCEEDED"]
WITH_TRANSFER = """
subscription ($id: ID!) {
  transferEvents(transferId: $id) { cursor type processedPairs transfer { status processedPairs requestedBy { userId } } }
}"""


async def _bulk(world: World) -> Transfer:
    """A queued bulk transfer of three pairs between East users, started by the tenant admin."""
    await world.stock(10, 11, 12)
    transfer, problems = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "f.csv", PAIRS))
    assert problems == []
    return transfer


async def _run_publishing(redis, transfer: Transfer) -> None:
    """Apply every pair here and now, publishing each commit's events as a worker does."""
    await event_stream.publish(redis, await running.begin(transfer.id))
    for item_id in await transfer.items.all().order_by("position").values_list("id", flat=True):
        await event_stream.publish(redis, await running.process_item(item_id))


async def _rest(stream) -> list[str]:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(30):
        return [e.type.value async for e in stream]


async def test_many_subscribers_of_one_transfer_each_get_every_event_once_in_commit_order(api: Api, world: World, pool) -> None:
    transfer = await _bulk(world)
    gid = to_global_id("Transfer", transfer.id)
    subscribers = 6
    subscribed = 0

    async def run_it_once_all_subscribed(event: dict) -> None:
        nonlocal subscribed
        if event["type"] == "SNAPSHOT":
            subscribed += 1
            if subscribed == subscribers:
                await transfer_jobs.enqueue(pool, transfer)

    received = await asyncio.gather(*(
        api.events(world.admin, gid, protocol=TRANSPORT_WS if n % 2 else LEGACY_WS, on_event=run_it_once_all_subscribed)
        for n in range(subscribers)
    ))
    for events_seen in received:
        assert [e["type"] for e in events_seen] == EVERYTHING
        assert [e["cursor"] for e in events_seen[1:]] == [event_cursor(transfer.id, n) for n in range(1, 6)]
        assert [e["processedPairs"] for e in events_seen] == [0, 0, 1, 2, 3, 3]
    assert all(events_seen[1:] == received[0][1:] for events_seen in received)  # the same events, to the letter


async def test_subscribers_of_one_event_each_see_the_transfer_through_their_own_view(api: Api, world: World, pool) -> None:
    transfer = await _bulk(world)  # the admin, outside the East view, started it
    gid = to_global_id("Transfer", transfer.id)
    subscribed = 0

    async def run_it_once_both_subscribed(event: dict) -> None:
        nonlocal subscribed
        subscribed += event["type"] == "SNAPSHOT"
        if event["type"] == "SNAPSHOT" and subscribed == 2:
            await transfer_jobs.enqueue(pool, transfer)

    async def watch_as(token: str) -> list[dict]:
        received = []
        async with asyncio.timeout(60), api.ws(token) as session:
            async for result in session.subscribe(GraphQLRequest(WITH_TRANSFER, variable_values={"id": gid})):
                received.append(result["transferEvents"])
                await run_it_once_both_subscribed(received[-1])
        return received

    admin, lead = await asyncio.gather(watch_as(world.admin), watch_as(world.lead))
    assert [e["type"] for e in admin] == [e["type"] for e in lead] == EVERYTHING
    assert {e["transfer"]["requestedBy"]["userId"] for e in admin} == {1}
    assert {e["transfer"]["requestedBy"] for e in lead} == {None}  # the admin is outside the lead's view
    assert [e["transfer"]["processedPairs"] for e in lead] == [0, 0, 1, 2, 3, 3]


async def test_a_slow_subscriber_holds_up_no_other_and_still_gets_every_event(world: World, redis_url: str) -> None:
    from redis.asyncio import Redis

    transfer = await _bulk(world)
    redis = Redis.from_url(redis_url)
    shared = Fanout(redis)
    slow = watch(shared, await Transfer.get(id=transfer.id), None)
    fast = watch(shared, await Transfer.get(id=transfer.id), None)
    try:
        assert (await anext(slow)).type.value == (await anext(fast)).type.value == "SNAPSHOT"
        await _run_publishing(redis, transfer)
        assert await _rest(fast) == EVERYTHING[1:]  # while the slow one has taken nothing more
        assert await _rest(slow) == EVERYTHING[1:]
    finally:
        await redis.aclose()


async def test_a_subscriber_that_joins_late_gets_the_snapshot_then_the_rest(world: World, redis_url: str) -> None:
    from redis.asyncio import Redis

    transfer = await _bulk(world)
    first_item, *others = await transfer.items.all().order_by("position").values_list("id", flat=True)
    redis = Redis.from_url(redis_url)
    shared = Fanout(redis)
    early = watch(shared, await Transfer.get(id=transfer.id), None)
    try:
        assert (await anext(early)).type.value == "SNAPSHOT"
        await event_stream.publish(redis, await running.begin(transfer.id))
        await event_stream.publish(redis, await running.process_item(first_item))
        assert [(await anext(early)).type.value for _ in range(2)] == ["STARTED", "ITEM_SUCCEEDED"]
        late = watch(shared, await Transfer.get(id=transfer.id), None)
        snapshot = await anext(late)
        assert (snapshot.type.value, snapshot.processed_pairs, snapshot.cursor) == ("SNAPSHOT", 1, event_cursor(transfer.id, 2, snapshot=True))
        for item_id in others:
            await event_stream.publish(redis, await running.process_item(item_id))
        assert await _rest(late) == await _rest(early) == ["ITEM_SUCCEEDED", "ITEM_SUCCEEDED", "SUCCEEDED"]
    finally:
        await redis.aclose()


async def test_a_subscriber_further_behind_than_the_reader_keeps_reads_the_record_up_to_it(
    world: World, redis_url: str, monkeypatch
) -> None:
    from redis.asyncio import Redis

    monkeypatch.setattr(fanout, "WINDOW", 1)  # the reader keeps at most 2 events
    transfer = await _bulk(world)
    redis = Redis.from_url(redis_url)
    shared = Fanout(redis)
    behind = watch(shared, await Transfer.get(id=transfer.id), None)
    try:
        assert (await anext(behind)).type.value == "SNAPSHOT"
        await _run_publishing(redis, transfer)
        async with asyncio.timeout(30):
            while (await Transfer.get(id=transfer.id)).last_event > shared._tails[transfer.id].low:
                await asyncio.sleep(0.05)  # the reader has let the first events go
        received = []
        async with asyncio.timeout(30):
            async for event in behind:
                received.append(event.cursor)
        assert received == [event_cursor(transfer.id, n) for n in range(1, 6)]
    finally:
        await redis.aclose()


@pytest.mark.parametrize(("followers", "interval"), [(1, 0.05), (50, 0.05), (200, 0.2), (500, 0.5), (5000, 0.5)])
async def test_subscribers_are_woken_less_often_the_more_there_are(followers: int, interval: float) -> None:
    """Each wake-up costs every subscriber its way through the GraphQL layers: the interval
    between them grows with the subscribers, so that their cost stays bounded."""
    tail = fanout._Tail()
    tail.start(0)
    tail.followers = followers
    woken: list[float] = []  # when each wake-up ran (this task may resume later)
    for seq in (1, 2, 3):
        arrived = tail.arrived
        tail.add([Event(1, seq, "ITEM_SUCCEEDED", "RUNNING", 3, seq, seq, 0, datetime.now(timezone.utc))])
        await arrived.wait()
        woken.append(tail._woken)
    assert tail.high == 3
    assert all(later - earlier >= interval - 0.002 for earlier, later in zip(woken, woken[1:]))  # the loop's clock: ms
    assert woken[-1] - woken[0] < 2 * interval + 0.5
