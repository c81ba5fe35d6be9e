"""transferEvents: SNAPSHOT, live events from the worker through Redis, resume, completion."""

from __future__ import annotations

import asyncio

from graph.api.transfer_events import event_cursor
from graph.core.relay import to_global_id
from jobs import transfer as transfer_jobs
from models import bulk, running, starting, transfer_events
from models.tenancy import User
from models.transfers import Transfer, TransferItem
from tests.support import LEGACY_WS, TRANSPORT_WS, Api, World


async def _queued(world: World, source: int, target: int) -> Transfer:
    if not await world.owned(source):
        await world.stock(source)
    transfer, problems = await starting.start_single(world.users[1], source, target)
    assert problems == []
    return transfer


async def _watch_live(api: Api, world: World, pool, protocol: str) -> list[dict]:
    """Subscribe to a queued transfer, then let the worker run it: every event arrives live."""
    await world.give(10, "CCR", 2)
    transfer = await _queued(world, 10, 11)

    async def run_it_once_subscribed(event: dict) -> None:
        if event["type"] == "SNAPSHOT":
            await transfer_jobs.enqueue(pool, transfer)

    return await api.events(world.admin, to_global_id("Transfer", transfer.id), protocol=protocol, on_event=run_it_once_subscribed)


async def test_events_stream_live_over_graphql_transport_ws(api: Api, world: World, pool) -> None:
    received = await asyncio.wait_for(_watch_live(api, world, pool, TRANSPORT_WS), 30)
    assert [e["type"] for e in received] == ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "SUCCEEDED"]
    snapshot, started, item, done = received
    assert snapshot["status"] == "QUEUED" and snapshot["processedPairs"] == 0
    assert started["status"] == "RUNNING"
    assert (item["sourceUserId"], item["targetUserId"], item["processedPairs"]) == (10, 11, 1)
    assert done["status"] == "SUCCEEDED" and done["message"] == "Data Transfer Successful"
    assert done["succeededPairs"] == 1 and done["totalPairs"] == 1
    cursors = [e["cursor"] for e in received[1:]]
    assert len(set(cursors)) == 3


async def test_events_stream_live_over_the_older_graphql_ws_protocol(api: Api, world: World, pool) -> None:
    received = await asyncio.wait_for(_watch_live(api, world, pool, LEGACY_WS), 30)
    assert [e["type"] for e in received] == ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "SUCCEEDED"]


async def test_a_finished_transfer_yields_its_snapshot_and_terminal_event_and_completes(api: Api, world: World) -> None:
    await world.stock(10)
    started = (await api("mutation { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true}) { transfer { id } } }", world.admin))
    gid = started["startTransfer"]["transfer"]["id"]
    await api.wait_finished(world.admin, gid)
    received = await asyncio.wait_for(api.events(world.admin, gid), 30)
    assert [(e["type"], e["status"]) for e in received] == [("SNAPSHOT", "SUCCEEDED"), ("SUCCEEDED", "SUCCEEDED")]


async def test_resuming_after_a_cursor_loses_and_repeats_nothing(api: Api, world: World, pool) -> None:
    everything = await asyncio.wait_for(_watch_live(api, world, pool, TRANSPORT_WS), 30)
    gid = everything[0]["transferId"]
    resume_from = everything[1]  # STARTED
    resumed = await asyncio.wait_for(api.events(world.admin, gid, after=resume_from["cursor"]), 30)
    assert resumed[0]["type"] == "SNAPSHOT"
    # the snapshot is the state at the cursor, so the counters never run backwards
    assert (resumed[0]["status"], resumed[0]["processedPairs"]) == ("RUNNING", 0)
    assert [(e["type"], e["cursor"]) for e in resumed[1:]] == [(e["type"], e["cursor"]) for e in everything[2:]]


async def test_a_cancelled_transfer_ends_with_cancelled(api: Api, world: World) -> None:
    transfer = await _queued(world, 10, 11)
    gid = to_global_id("Transfer", transfer.id)
    cancel = "mutation ($id: ID!) { cancelTransfer(id: $id) { transfer { status message } userErrors { code } } }"
    result = (await api(cancel, world.admin, id=gid))["cancelTransfer"]
    assert result["userErrors"] == [] and result["transfer"]["status"] == "CANCELLED"
    received = await asyncio.wait_for(api.events(world.admin, gid), 30)
    assert [e["type"] for e in received] == ["SNAPSHOT", "CANCELLED"]
    again = (await api(cancel, world.admin, id=gid))["cancelTransfer"]
    assert again["userErrors"] == [{"code": "TRANSFER_FINISHED"}]


async def test_a_live_subscriber_gets_the_events_whose_publish_was_lost_from_the_record(
    api: Api, world: World, redis_url: str, monkeypatch
) -> None:
    from redis.asyncio import Redis

    from graph.api import transfer_events as subscription
    from jobs import event_stream

    monkeypatch.setattr(subscription, "RECHECK_MS", 500)  # notice the silence sooner than in production
    transfer = await _queued(world, 10, 11)
    (item_id,) = await transfer.items.all().values_list("id", flat=True)
    redis = Redis.from_url(redis_url)

    async def lose_the_last_publish(event: dict) -> None:
        if event["type"] == "SNAPSHOT":
            await event_stream.publish(redis, await running.begin(transfer.id))  # STARTED goes out live
        if event["type"] == "STARTED":  # the subscriber is past its first read of the record
            lost = await running.process_item(item_id)  # committed; its publish never happens
            assert [e.type for e in lost] == ["ITEM_SUCCEEDED", "SUCCEEDED"]

    try:
        received = await api.events(world.admin, to_global_id("Transfer", transfer.id), on_event=lose_the_last_publish)
        assert await redis.xlen(event_stream.stream_key(transfer.id)) == 1  # only STARTED was ever published
    finally:
        await redis.aclose()
    assert [(e["type"], e["processedPairs"]) for e in received] == [
        ("SNAPSHOT", 0), ("STARTED", 0), ("ITEM_SUCCEEDED", 1), ("SUCCEEDED", 1)
    ]
    assert [e["cursor"] for e in received[1:]] == [event_cursor(transfer.id, n) for n in (1, 2, 3)]


async def test_events_published_out_of_commit_order_arrive_in_order_and_none_is_lost(api: Api, world: World, redis_url: str) -> None:
    from redis.asyncio import Redis

    from jobs import event_stream
    from models import bulk

    await world.stock(10, 11)
    transfer, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "f.csv", b"Source User ID,Target User ID\n10,20\n11,21\n"))
    redis = Redis.from_url(redis_url)
    await event_stream.publish(redis, await running.begin(transfer.id))
    first, second = await transfer.items.all().order_by("position").values_list("id", flat=True)

    async def lose_the_first_publish(event: dict) -> None:
        if event["type"] == "SNAPSHOT":
            lost = await running.process_item(first)  # committed; its publish never happens
            await event_stream.publish(redis, await running.process_item(second))
            assert lost

    try:
        received = await api.events(world.admin, to_global_id("Transfer", transfer.id), on_event=lose_the_first_publish)
    finally:
        await redis.aclose()
    assert [(e["type"], e["sourceUserId"]) for e in received] == [
        ("SNAPSHOT", None), ("ITEM_SUCCEEDED", 10), ("ITEM_SUCCEEDED", 11), ("SUCCEEDED", None)
    ]
    assert [e["cursor"] for e in received[1:]] == [event_cursor(transfer.id, n) for n in (2, 3, 4)]


async def test_pairs_are_applied_while_redis_is_unreachable_and_the_record_keeps_every_event(api: Api, world: World) -> None:
    from redis.asyncio import Redis

    await world.give(10, "CCR", 2)
    transfer = await _queued(world, 10, 11)
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    assert await transfer_jobs.run_lane({"redis": unreachable}, transfer.id, 0, 1) == 1
    await unreachable.aclose()
    assert await world.owned(11) == {"CCR": 2}
    received = await asyncio.wait_for(api.events(world.admin, to_global_id("Transfer", transfer.id), after=event_cursor(transfer.id, 0)), 30)
    assert [e["type"] for e in received] == ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "SUCCEEDED"]


async def test_a_cursor_of_another_transfer_from_the_future_or_not_in_its_exact_encoding_is_refused(api: Api, world: World) -> None:
    import pytest
    from gql.transport.exceptions import TransportQueryError

    first = await _queued(world, 10, 11)
    second = await _queued(world, 12, 13)
    import base64

    exact = event_cursor(second.id, 0)
    loose = (  # the same event number, written otherwise: only the exact encoding is a cursor
        exact + "\u200b",
        exact.rstrip("=") if exact.endswith("=") else exact + "==",
        base64.urlsafe_b64encode(f"TransferEvent:{second.id}:00".encode()).decode(),
        base64.urlsafe_b64encode(f"TransferEvent:{second.id}: 0".encode()).decode(),
        *(  # a SNAPSHOT's mark, written otherwise
            base64.urlsafe_b64encode(f"TransferEvent:{second.id}:0{mark}".encode()).decode()
            for mark in (":SNAPSHOT", ":snapshot:", ":snapshot:snapshot", ":other", ":")
        ),
    )
    resumed = await api.events(world.admin, to_global_id("Transfer", second.id), after=event_cursor(second.id, 0, snapshot=True), limit=1)
    assert resumed[0]["type"] == "SNAPSHOT"  # the exact encoding of a SNAPSHOT's cursor is one
    for bad in (event_cursor(first.id, 0), event_cursor(second.id, 99), "3", "not a cursor", *loose):
        with pytest.raises(TransportQueryError) as caught:
            await api.events(world.admin, to_global_id("Transfer", second.id), after=bad)
        assert caught.value.errors[0]["extensions"]["code"] == "INVALID_CURSOR"
    await running.cancel(first)
    await running.cancel(second)


async def test_a_subscriber_keeps_receiving_from_the_record_while_redis_is_unreachable(world: World, monkeypatch) -> None:
    from redis.asyncio import Redis

    from graph.api import transfer_events as subscription
    from graph.live.fanout import Fanout

    monkeypatch.setattr(subscription, "RECHECK_MS", 300)
    transfer = await _queued(world, 10, 11)
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    stream = subscription.watch(Fanout(unreachable), transfer, None)
    assert (await anext(stream)).type.value == "SNAPSHOT"
    await running.begin(transfer.id)
    assert (await anext(stream)).type.value == "STARTED"  # the subscriber is past its first read of the record
    (item_id,) = await transfer.items.all().values_list("id", flat=True)
    await running.process_item(item_id)
    async with asyncio.timeout(30):
        received = [e.type.value async for e in stream]
    await unreachable.aclose()
    assert received == ["ITEM_SUCCEEDED", "SUCCEEDED"]


async def test_a_finished_transfers_event_stream_expires_after_the_events_ttl(
    api: Api, world: World, redis_url: str, monkeypatch
) -> None:
    from redis.asyncio import Redis

    from graph.core.relay import pk_of
    from jobs import event_stream
    from models import settings

    monkeypatch.setattr(settings, "EVENTS_TTL_SECONDS", 4321)  # UDT_EVENTS_TTL_SECONDS
    await world.stock(10)
    started = await api("mutation { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true}) { transfer { id } } }", world.admin)
    gid = started["startTransfer"]["transfer"]["id"]
    assert (await api.wait_finished(world.admin, gid))["status"] == "SUCCEEDED"
    redis = Redis.from_url(redis_url)
    key = event_stream.stream_key(pk_of(gid, "Transfer"))
    try:
        async with asyncio.timeout(30):
            while (ttl := await redis.ttl(key)) < 0:  # the terminal event is published just after its commit
                await asyncio.sleep(0.05)
        assert await redis.xlen(key) == 3  # STARTED, ITEM_SUCCEEDED, SUCCEEDED
    finally:
        await redis.aclose()
    assert 4321 - 60 < ttl <= 4321


async def test_the_record_holds_each_event_exactly_as_the_worker_publishes_it(world: World) -> None:
    """A subscriber that fills a gap from the record must see what the others heard live."""
    await world.stock(10, 11)
    upload = await bulk.create_upload(world.users[1], "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n")
    transfer, _ = await bulk.start(world.users[1], upload)
    await User.filter(id=world.pk(21)).update(tenant_admin=True)  # the second pair fails its re-check
    published = await running.begin(transfer.id)
    for item_id in await TransferItem.filter(transfer_id=transfer.id).order_by("position").values_list("id", flat=True):
        published += await running.process_item(item_id)
    assert [e.type for e in published] == ["STARTED", "ITEM_SUCCEEDED", "ITEM_FAILED", "PARTIALLY_FAILED"]
    assert published[1].records is not None  # the worker's own figures, never recorded
    assert [e.to_json() for e in await transfer_events.recorded(transfer.id, 0)] == [e.to_json() for e in published]
    assert [e.seq for e in published] == [1, 2, 3, 4]
    failed = published[2]
    assert (failed.source_user_id, failed.target_user_id, failed.error_code) == (11, 21, "TENANT_ADMIN")
    assert (failed.processed_pairs, failed.succeeded_pairs, failed.failed_pairs, failed.status) == (2, 1, 1, "RUNNING")
