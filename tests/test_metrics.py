"""Metrics: /metrics in Prometheus's text format counts what really happened, on the API and on every worker.

The suite's app is shared by every test, so its counters are compared before
and after: the difference is what this test's transfer did.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from graph.core.relay import to_global_id
from graph.server.app import create_app
from jobs import transfer as transfer_jobs
from jobs.connection import arq_pool
from models import bulk, running, settings, starting
from models.transfers import ACTIVE_STATUSES, ItemStatus, Transfer, TransferItem
from tests.processes import Workers, enqueue, finished, until, worker_env
from tests.support import TRANSFER, Api, World, free_port, serving

START_BULK = """
mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) {
  transfer { id } userErrors { code } } }"""

Samples = dict[tuple[str, frozenset], float]


async def scrape(base: str) -> Samples:
    """Every sample of a /metrics page, parsed by prometheus_client's own parser."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_metrics_after_a_bulk_transfer_count_its_pairs_records_events_and_requests(api: Api, world: World) -> None:
    pairs = [(10, 20), (11, 21), (12, 22)]
    for source, target in pairs:
        await world.give(source, "CCR", 3)
        await world.give(source, "PROJECT", 2)
        await world.give(target, "PROJECT", 1)  # OVERWRITE: deleted when the source's arrive
    before = await scrape(api.base)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)))["upload"]
    started = (await api(START_BULK, world.admin, id=upload["id"]))["startBulkTransfer"]
    assert started["userErrors"] == []
    events = await api.events(world.admin, started["transfer"]["id"])
    assert events[-1]["type"] == "SUCCEEDED"
    done = (await api(TRANSFER, world.admin, id=started["transfer"]["id"]))["transfer"]
    after = await scrape(api.base)

    assert grew(before, after, "udt_transfers_started_total", kind="BULK") == 1
    assert grew(before, after, "udt_transfers_finished_total", kind="BULK", status="SUCCEEDED") == 1
    assert grew(before, after, "udt_pairs_applied_total") == done["succeededPairs"] == len(pairs)
    assert grew(before, after, "udt_pair_duration_seconds_count") == done["processedPairs"]
    moved, deleted = Counter(), Counter()
    for edge in done["items"]["edges"]:
        moved.update({m["dataType"]["key"]: m["count"] for m in edge["node"]["moved"]})
        deleted.update({m["dataType"]["key"]: m["count"] for m in edge["node"]["overwritten"]})
    assert moved == {"CCR": 9, "PROJECT": 6} and deleted == {"PROJECT": 3}
    for key in ("CCR", "PROJECT"):
        assert grew(before, after, "udt_records_moved_total", data_type=key) == moved[key]
        assert grew(before, after, "udt_records_deleted_total", data_type=key) == deleted[key]
    published = {t: grew(before, after, "udt_events_published_total", type=t) for t in ("STARTED", "ITEM_SUCCEEDED", "SUCCEEDED")}
    assert published == {"STARTED": 1, "ITEM_SUCCEEDED": len(pairs), "SUCCEEDED": 1}
    for operation in ("uploadBulkTransferFile", "startBulkTransfer"):
        assert grew(before, after, "udt_graphql_requests_total", operation=operation, outcome="ok") == 1
        assert grew(before, after, "udt_graphql_request_duration_seconds_count", operation=operation) == 1
    assert grew(before, after, "udt_graphql_requests_total", operation="transfer", outcome="ok") == 1


async def test_failed_pairs_are_counted_by_code_and_the_transfer_by_its_final_status(api: Api, world: World) -> None:
    await world.stock(10, 11)
    upload = await bulk.create_upload(world.users[1], "f.csv", b"Source User ID,Target User ID\n10,20\n11,21\n")
    transfer, _ = await bulk.start(world.users[1], upload)
    world.users[21].tenant_admin = True  # after the start's check, before its pair: it fails TENANT_ADMIN
    await world.users[21].save()
    before = await scrape(api.base)
    pool = await arq_pool()
    await transfer_jobs.enqueue(pool, transfer)
    await pool.aclose()
    done = await api.wait_finished(world.admin, to_global_id("Transfer", transfer.id))
    after = await scrape(api.base)
    assert done["status"] == "PARTIALLY_FAILED"
    assert grew(before, after, "udt_pairs_failed_total", error_code="TENANT_ADMIN") == 1
    assert grew(before, after, "udt_pairs_applied_total") == 1
    assert grew(before, after, "udt_events_published_total", type="ITEM_FAILED") == 1
    assert grew(before, after, "udt_transfers_finished_total", kind="BULK", status="PARTIALLY_FAILED") == 1


async def test_requests_are_labelled_by_the_root_field_never_by_the_clients_operation_name(api: Api, world: World) -> None:
    before = await scrape(api.base)
    await api("query MyVeryOwnName { viewer { canTransfer } }", world.admin)
    await api("{ viewer { canTransfer } dataTypes { key } }", world.admin)
    async with httpx.AsyncClient() as client:
        await client.post(
            f"{api.base}/graphql", json={"query": "query Sneaky { noSuchField }"}, headers={"Authorization": f"Bearer {world.admin}"}
        )
    after = await scrape(api.base)
    assert grew(before, after, "udt_graphql_requests_total", operation="viewer", outcome="ok") == 1
    assert grew(before, after, "udt_graphql_requests_total", operation="multiple", outcome="ok") == 1
    assert grew(before, after, "udt_graphql_requests_total", operation="other", outcome="error") == 1
    labels = {dict(labels).get("operation") for _, labels in after}
    assert not labels & {"MyVeryOwnName", "Sneaky", "noSuchField"}


async def test_an_open_subscription_is_counted_until_it_ends(api: Api, world: World) -> None:
    await world.stock(10)
    transfer, _ = await starting.start_single(world.users[1], 10, 20)  # queued, never enqueued: it stays open
    gid = to_global_id("Transfer", transfer.id)
    before = value(await scrape(api.base), "udt_subscriptions_open")
    seen: list[float] = []

    async def while_open(event: dict) -> None:
        seen.append(value(await scrape(api.base), "udt_subscriptions_open"))
        if event["type"] == "SNAPSHOT":
            await api("mutation ($id: ID!) { cancelTransfer(id: $id) { userErrors { code } } }", world.admin, id=gid)

    events = await api.events(world.admin, gid, on_event=while_open)
    assert [e["type"] for e in events] == ["SNAPSHOT", "CANCELLED"]
    assert seen[0] == before + 1

    async def closed() -> bool:
        return value(await scrape(api.base), "udt_subscriptions_open") == before

    await until(closed, 10)


async def test_queue_depth_and_the_oldest_pending_pair_are_read_when_scraped(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-metrics:{world.tenant.id}")  # no worker takes it
    monkeypatch.setattr(settings, "BULK_LANES", 2)
    before = await scrape(api.base)
    assert value(before, "udt_queue_jobs") == 0
    await world.stock(10, 11, 12)
    upload = await bulk.create_upload(world.users[1], "f.csv", b"Source User ID,Target User ID\n10,20\n11,21\n12,22\n")
    transfer, _ = await bulk.start(world.users[1], upload)
    await enqueue(transfer)
    await asyncio.sleep(1.1)
    during = await scrape(api.base)
    assert value(during, "udt_queue_jobs") == 2  # one job per lane
    assert grew(before, during, "udt_pairs_pending") == 3
    assert value(during, "udt_oldest_pending_pair_age_seconds") >= 1.0
    await running.cancel(transfer)
    assert grew(before, await scrape(api.base), "udt_pairs_pending") == 0


async def test_metrics_can_be_switched_off_or_moved_to_a_port_of_their_own(
    database: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for enabled, port in ((False, None), (True, free_port())):
        monkeypatch.setattr(settings, "METRICS_ENABLED", enabled)
        monkeypatch.setattr(settings, "METRICS_PORT", port)
        async with serving(create_app()) as base, httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/metrics")).status_code == 404
            assert (await client.get(f"{base}/healthz")).status_code == 200


async def test_a_worker_process_serves_its_own_metrics_on_its_port(
    world: World, database: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"udt:test-metrics-worker:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    port = free_port()
    workers = Workers(worker_env(database, redis_url, queue, UDT_METRICS_PORT=str(port)), tmp_path / "pairs")
    await world.give(10, "CCR", 4)
    await world.give(11, "CCR", 1)
    upload = await bulk.create_upload(world.users[1], "f.csv", b"Source User ID,Target User ID\n10,20\n11,21\n")
    transfer, _ = await bulk.start(world.users[1], upload)
    try:
        await workers.start()
        await enqueue(transfer)

        await until(lambda: finished(transfer), 60)
        base = f"http://127.0.0.1:{port}"
        samples = await scrape(base)  # a fresh process: its counters are this transfer's alone
        assert value(samples, "udt_pairs_applied_total") == 2
        assert value(samples, "udt_records_moved_total", data_type="CCR") == 5
        assert value(samples, "udt_transfers_finished_total", kind="BULK", status="SUCCEEDED") == 1
        assert value(samples, "udt_events_published_total", type="ITEM_SUCCEEDED") == 2
        # The backlog is the queue's and the database's, not this transfer's alone: the worker's
        # reconciler also queues what earlier tests left QUEUED. This transfer adds nothing to it.
        redis = Redis.from_url(redis_url)
        try:
            jobs = [job.decode() for job in await redis.zrange(queue, 0, -1)]
        finally:
            await redis.aclose()
        assert value(samples, "udt_queue_jobs") == len(jobs)
        assert not [job for job in jobs if job.startswith(f"udt:transfer:{transfer.id}:")]
        active = await Transfer.filter(status__in=ACTIVE_STATUSES).values_list("id", "total_pairs", "processed_pairs")
        assert transfer.id not in {pk for pk, _, _ in active}
        assert value(samples, "udt_pairs_pending") == sum(total - processed for _, total, processed in active)
        items = await TransferItem.filter(transfer_id=transfer.id).values_list("status", flat=True)
        assert set(items) == {ItemStatus.SUCCEEDED}
        assert ("udt_oldest_pending_pair_age_seconds", frozenset()) in samples
    finally:
        await workers.stop_all()


async def test_udt_serve_moves_metrics_to_their_port_and_a_worker_whose_port_is_taken_works_on(
    world: World, database: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from tests.test_logging import udt_serve

    queue = f"udt:test-metrics-ports:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    port = free_port()
    async with udt_serve(worker_env(database, redis_url, queue, UDT_METRICS_PORT=str(port)), tmp_path / "api.log") as base:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/metrics")).status_code == 404
        assert ("udt_queue_jobs", frozenset()) in await scrape(f"http://127.0.0.1:{port}")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env = worker_env(database, redis_url, queue, UDT_METRICS_PORT=str(busy), UDT_METRICS_HOST="127.0.0.1")
        workers = Workers(env, tmp_path / "pairs")
        await world.stock(10)
        transfer, _ = await starting.start_single(world.users[1], 10, 20)
        try:
            await workers.start()
            await enqueue(transfer)

            await until(lambda: finished(transfer), 60)
        finally:
            await workers.stop_all()
    assert (await Transfer.get(id=transfer.id)).status.value == "SUCCEEDED"
    assert "cannot listen on 127.0.0.1:" in (tmp_path / "worker-0.log").read_text()


async def test_a_start_resent_with_its_idempotency_key_is_not_counted_as_started_again(api: Api, world: World) -> None:
    from tests.test_idempotency import start as start_with_key

    await world.stock(10)
    before = await scrape(api.base)
    first = await start_with_key(api, world.admin, 10, 11, key="counted-once")
    again = await start_with_key(api, world.admin, 10, 11, key="counted-once")
    assert first["userErrors"] == again["userErrors"] == [] and first["transfer"]["id"] == again["transfer"]["id"]
    await api.wait_finished(world.admin, first["transfer"]["id"])
    after = await scrape(api.base)
    assert grew(before, after, "udt_transfers_started_total", kind="SINGLE") == 1
