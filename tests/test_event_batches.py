"""Events that reach a subscriber together cross the GraphQL layers as one batch (graph/execution/shared_events.py),
and still reach its client as one message each, complete, in order, on both protocols."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
import strawberry
from gql import GraphQLRequest
from redis.asyncio import Redis

from graph.api.transfer_events import event_cursor
from graph.core.errors import MaskUnexpectedErrors
from graph.core.relay import to_global_id
from graph.execution.shared_events import EventBatch, SharedEventExecutor
from graph.live.encoding import EncodedBatch, EncodedData, encoded_message
from graph.live.websocket import Messages
from jobs import event_stream
from models import running
from models.transfers import Transfer
from tests.support import LEGACY_WS, TRANSPORT_WS, Api, World
from tests.test_event_fanout import EVERYTHING, WITH_TRANSFER, _bulk


@pytest.fixture
def batches(monkeypatch) -> list[tuple[int, int]]:
    """(events offered, events taken) of every batch the API executes."""
    seen: list[tuple[int, int]] = []
    execute = SharedEventExecutor._execute_batch

    def noted(self, batch: EventBatch):  # type: ignore[no-untyped-def]
        result = execute(self, batch)
        seen.append((len(batch.items), batch.taken))
        return result

    monkeypatch.setattr(SharedEventExecutor, "_execute_batch", noted)
    return seen


async def _commit_all(transfer: Transfer) -> list:
    """Every pair committed, nothing published yet: each commit's events, in commit order."""
    found = [await running.begin(transfer.id)]
    items = await transfer.items.all().order_by("position").values_list("id", flat=True)
    return found + [await running.process_item(item_id) for item_id in items]


async def _publish(redis_url: str, commits: list) -> None:
    """The events of these commits in one call, so in one MULTI/EXEC: they reach the API together."""
    redis = Redis.from_url(redis_url)
    try:
        await event_stream.publish(redis, [e for each in commits for e in each])
    finally:
        await redis.aclose()


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_events_that_arrive_together_pass_as_one_batch_and_reach_the_client_one_message_each(
    api: Api, world: World, redis_url: str, batches: list, protocol: str
) -> None:
    transfer = await _bulk(world)
    commits: list = []

    async def publish_in_two_parts(event: dict) -> None:
        if event["type"] == "SNAPSHOT":
            commits.extend(await _commit_all(transfer))
            await _publish(redis_url, commits[:3])  # STARTED and two pairs
        elif event["processedPairs"] == 2:
            await _publish(redis_url, commits[3:])  # the last pair, and the end

    received = await api.events(world.admin, to_global_id("Transfer", transfer.id), protocol=protocol, on_event=publish_in_two_parts)
    assert [e["type"] for e in received] == EVERYTHING
    assert [e["cursor"] for e in received[1:]] == [event_cursor(transfer.id, n) for n in range(1, 6)]
    assert [e["processedPairs"] for e in received] == [0, 0, 1, 2, 3, 3]
    assert batches == [(3, 3), (2, 2)]  # each part travelled whole, as one


async def test_a_selection_that_reaches_the_transfer_is_executed_per_event_for_each_subscriber(
    api: Api, world: World, redis_url: str, batches: list
) -> None:
    transfer = await _bulk(world)
    received = []
    async with asyncio.timeout(60), api.ws(world.lead) as session:
        request = GraphQLRequest(WITH_TRANSFER, variable_values={"id": to_global_id("Transfer", transfer.id)})
        async for result in session.subscribe(request):
            received.append(result["transferEvents"])
            if len(received) == 1:
                await _publish(redis_url, await _commit_all(transfer))
    assert [e["type"] for e in received] == EVERYTHING
    assert {e["transfer"]["requestedBy"] for e in received} == {None}  # the lead's own view, each time
    assert batches == []


@strawberry.type
class Tick:
    n: int
    shared: strawberry.Private[dict]


@strawberry.type
class Query:
    ok: bool = True


def _tick(tick: Tick) -> Tick:
    if tick.n == 3:
        raise ValueError("an event this process cannot read")
    return tick


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, numbers: list[int | None]) -> AsyncGenerator[Tick, None]:
        batch = EventBatch([Tick(n=n, shared={}) for n in numbers], _tick)  # type: ignore[arg-type]
        yield batch  # type: ignore[misc]
        for tick in batch.items[batch.taken :]:
            yield _tick(tick)


SCHEMA = strawberry.Schema(Query, subscription=Subscription, extensions=[MaskUnexpectedErrors], execution_context_class=SharedEventExecutor)


async def test_an_event_a_batch_cannot_carry_goes_alone_with_its_error_masked_and_the_rest_follow() -> None:
    results = [r async for r in await SCHEMA.subscribe("subscription { ticks(numbers: [1, 2, null, 4]) { n } }")]
    first, failed, last = results
    assert isinstance(first.data, EncodedBatch) and first.data == [{"ticks": {"n": 1}}, {"ticks": {"n": 2}}]
    message = encoded_message({"id": "7", "type": "next", "payload": {"data": first.data}})
    assert isinstance(message, Messages)
    assert message.texts == ['{"id":"7","type":"next","payload":{"data":{"ticks":{"n":1}}}}', '{"id":"7","type":"next","payload":{"data":{"ticks":{"n":2}}}}']
    assert failed.data is None and [(e.message, e.extensions["code"]) for e in failed.errors] == [("Internal server error.", "INTERNAL_ERROR")]
    assert last.data == {"ticks": {"n": 4}} and not last.errors


async def test_the_events_before_one_that_raises_are_sent_then_it_fails_alone() -> None:
    results = [r async for r in await SCHEMA.subscribe("subscription { ticks(numbers: [1, 2, 3, 4]) { n } }")]
    first, failed = results  # the stream ends at the failure, as it would have one by one
    assert first.data == [{"ticks": {"n": 1}}, {"ticks": {"n": 2}}]
    assert [(e.message, e.extensions["code"]) for e in failed.errors] == [("Internal server error.", "INTERNAL_ERROR")]


def test_a_batch_with_anything_beside_it_in_its_payload_is_refused_not_sent_as_one_message() -> None:
    batch = EncodedBatch([EncodedData({"ticks": {"n": 1}})])
    with pytest.raises(RuntimeError):
        encoded_message({"id": "7", "type": "next", "payload": {"data": batch, "extensions": {"cost": 1}}})
