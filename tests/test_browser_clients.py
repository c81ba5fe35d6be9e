"""Browser clients with their usual settings: CORS for the headers they send, events a normalized
cache can apply (Apollo, urql), and cursors unique enough to key a list by."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from gql import GraphQLRequest

from graph.core.relay import to_global_id
from jobs import transfer as transfer_jobs
from models import starting
from tests.support import Api, World

ORIGIN = "https://app.example.com"
# What common setups add to every request: apollo-upload-client's docs, Apollo's client
# awareness, Apollo's operation name header, W3C trace context and Sentry's browser SDK.
CLIENT_HEADERS = [
    "apollo-require-preflight",
    "apollographql-client-name",
    "apollographql-client-version",
    "x-apollo-operation-name",
    "traceparent",
    "tracestate",
    "baggage",
    "sentry-trace",
]

EVENTS_WITH_TRANSFER = """
subscription ($id: ID!, $after: String) {
  transferEvents(transferId: $id, after: $after) {
    cursor type status processedPairs succeededPairs failedPairs message
    transfer { __typename id kind status totalPairs processedPairs succeededPairs failedPairs
               message startedAt finishedAt createdAt requestedBy { userId } }
  }
}"""


async def _preflight(api: Api, headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.options(
            f"{api.base}/graphql",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers},
        )


@pytest.mark.parametrize("header", CLIENT_HEADERS)
async def test_a_preflight_for_a_header_common_clients_send_is_allowed(api: Api, header: str) -> None:
    answer = await _preflight(api, f"authorization, content-type, {header}")
    assert answer.status_code == 200
    assert header in answer.headers["access-control-allow-headers"].lower()


async def test_a_preflight_with_every_common_header_at_once_is_allowed_and_may_be_cached(api: Api) -> None:
    answer = await _preflight(api, ", ".join(["authorization", "content-type", *CLIENT_HEADERS]))
    assert answer.status_code == 200
    assert int(answer.headers["access-control-max-age"]) >= 600  # not asked again before every request


async def test_a_header_no_client_needs_is_still_refused_in_a_preflight(api: Api) -> None:
    assert (await _preflight(api, "x-something-else")).status_code == 400


async def test_a_front_end_can_read_the_file_name_of_a_csv_download(api: Api, world: World) -> None:
    async with httpx.AsyncClient() as client:
        download = await client.get(
            f"{api.base}/exports/people.csv", headers={"Origin": ORIGIN, "Authorization": f"Bearer {world.admin}"}
        )
    assert download.status_code == 200
    assert 'filename="people.csv"' in download.headers["content-disposition"]
    assert "content-disposition" in download.headers["access-control-expose-headers"].lower()


async def _subscribe(api: Api, token: str, gid: str, after: str | None = None, on_event=None) -> list[dict]:
    received: list[dict] = []
    async with asyncio.timeout(60), api.ws(token) as session:
        request = GraphQLRequest(EVENTS_WITH_TRANSFER, variable_values={"id": gid, "after": after})
        async for result in session.subscribe(request):
            received.append(result["transferEvents"])
            if on_event is not None:
                await on_event(received[-1])
    return received


async def _watch_a_live_transfer(api: Api, world: World, pool) -> tuple[str, list[dict]]:
    """Subscribe (as the admin, through gql over graphql-transport-ws) to a queued transfer, then let the worker run it."""
    await world.stock(10)
    transfer, problems = await starting.start_single(world.users[1], 10, 11)
    assert problems == []
    gid = to_global_id("Transfer", transfer.id)

    async def run_it_once_subscribed(event: dict) -> None:
        if event["type"] == "SNAPSHOT":
            await transfer_jobs.enqueue(pool, transfer)

    return gid, await _subscribe(api, world.admin, gid, on_event=run_it_once_subscribed)


async def test_each_event_carries_its_transfer_as_that_event_left_it(api: Api, world: World, pool) -> None:
    gid, received = await _watch_a_live_transfer(api, world, pool)
    assert [e["type"] for e in received] == ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "SUCCEEDED"]
    for event in received:
        transfer = event["transfer"]
        # the entry a normalized cache keys as Transfer:<id>, with this event's state
        assert (transfer["__typename"], transfer["id"], transfer["kind"]) == ("Transfer", gid, "SINGLE")
        assert transfer["requestedBy"] == {"userId": 1}
        for name in ("status", "processedPairs", "succeededPairs", "failedPairs"):
            assert transfer[name] == event[name], (event["type"], name)
    snapshot, started, item, done = (e["transfer"] for e in received)
    assert snapshot["startedAt"] is None and snapshot["finishedAt"] is None and snapshot["message"] is None
    assert started["startedAt"] is not None and started["finishedAt"] is None
    assert item["message"] is None  # the event's message is about the pair, not the transfer
    assert done["finishedAt"] is not None and done["message"] == "Data Transfer Successful"
    assert done["startedAt"] == started["startedAt"]
    final = (await api("query ($id: ID!) { transfer(id: $id) { status processedPairs startedAt finishedAt message } }", world.admin, id=gid))
    assert {k: done[k] for k in final["transfer"]} == final["transfer"]


async def test_no_two_events_of_a_subscription_share_a_cursor(api: Api, world: World, pool) -> None:
    gid, live = await _watch_a_live_transfer(api, world, pool)
    finished = await _subscribe(api, world.admin, gid)
    assert [e["type"] for e in finished] == ["SNAPSHOT", "SUCCEEDED"]
    assert len({e["cursor"] for e in live}) == len(live) == 4
    assert finished[0]["cursor"] != finished[1]["cursor"]
    assert finished[1]["cursor"] == live[-1]["cursor"]  # an event's cursor is the same in every subscription


async def test_resuming_from_a_snapshots_cursor_continues_right_after_the_state_it_showed(
    api: Api, world: World, pool
) -> None:
    gid, live = await _watch_a_live_transfer(api, world, pool)
    resumed = await _subscribe(api, world.admin, gid, after=live[0]["cursor"])  # the QUEUED snapshot
    assert [(e["type"], e["cursor"]) for e in resumed] == [(e["type"], e["cursor"]) for e in live]
    assert resumed[0]["status"] == "QUEUED" and resumed[0]["transfer"]["startedAt"] is None
    finished = await _subscribe(api, world.admin, gid)
    again = await _subscribe(api, world.admin, gid, after=finished[0]["cursor"])  # a finished transfer's snapshot
    assert [(e["type"], e["cursor"]) for e in again] == [(e["type"], e["cursor"]) for e in finished]
