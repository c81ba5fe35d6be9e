"""Webhooks are observable: deliveries in `udt webhooks list|deliveries`, in the JSON log with the
transfer's and the delivery's IDs, and in /metrics (delivered, retried, failed, pending); `udt dev`
lets webhooks reach this machine and says so."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise.expressions import Q

from graph.core.relay import to_global_id
from models import settings, starting
from models.clock import now
from models.webhooks import DeliveryStatus, WebhookDelivery
from tests.processes import Workers, enqueue, until, worker_env
from tests.support import Api, World
from tests.test_cli import udt
from tests.test_download_links import running_dev
from tests.test_metrics import grew, scrape, value
from tests.test_revert import transfer
from tests.webhook_receiver import Answer, Receiver, receiving
from tests.webhooks_support import (
    CREATE,
    SEND_TEST,
    create_endpoint,
    deliveries_of,
    settled,
)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


async def test_the_cli_lists_endpoints_and_deliveries(api: Api, world: World, receiver: Receiver, database: str) -> None:
    endpoint_id, _ = await create_endpoint(api, world.admin, receiver.url, ["transfer.succeeded"])
    await world.stock(10)
    transfer_id = await transfer(api, world, 10, 11)
    (received,) = await receiver.wait(1)
    (delivery,) = await deliveries_of(endpoint_id)
    await settled(delivery.id, 1)

    code, out = await udt("webhooks", "list", "--tenant", world.tenant.slug, database=database)
    assert code == 0, out
    header, row = out.splitlines()
    assert header.split()[:4] == ["ID", "TENANT", "URL", "EVENTS"]
    assert receiver.url in row and "transfer.succeeded" in row and " yes " in row

    code, out = await udt("webhooks", "deliveries", "--endpoint", str(delivery.endpoint_id), database=database)
    assert code == 0, out
    header, row = out.splitlines()
    cells = row.split()
    assert cells[:8] == [
        str(delivery.id), received.webhook_id, str(delivery.endpoint_id), "transfer.succeeded",
        str(delivery.transfer_id), "DELIVERED", "1", "200",
    ]
    assert to_global_id("Transfer", delivery.transfer_id) == transfer_id


async def no_other_deliveries_pending() -> bool:
    """Other tests' deliveries given up, once no attempt of theirs is in flight (its lease held)."""
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now())
    await WebhookDelivery.filter(free, status=DeliveryStatus.PENDING).update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    return not await WebhookDelivery.filter(status=DeliveryStatus.PENDING).exists()


async def test_metrics_count_delivered_retried_and_failed_deliveries_and_the_pending_backlog(
    api: Api, world: World, receiver: Receiver, pool
) -> None:
    from jobs import metrics
    from jobs import webhooks as webhook_jobs
    from tests.webhooks_support import make_due

    metrics.watch_backlog(pool)  # an app another test started may have left it reading a pool it has closed since
    await until(no_other_deliveries_pending, 45)  # the counters are the process's, not this test's
    before = await scrape(api.base)
    endpoint_id, _ = await create_endpoint(api, world.admin, receiver.url)
    receiver.script = [Answer(500), Answer(410)]
    sent = await api(SEND_TEST, world.admin, id=endpoint_id)
    pk = (await deliveries_of(endpoint_id))[0].id
    assert sent["sendTestWebhook"]["userErrors"] == []
    await settled(pk, 1)  # 500: retried
    middle = await scrape(api.base)
    assert grew(before, middle, "udt_webhooks_retried_total") == 1
    assert value(middle, "udt_webhooks_pending") >= 1
    await make_due(pk)
    await webhook_jobs.deliver_webhook({"redis": pool}, pk)
    await settled(pk, 2)
    await WebhookDelivery.filter(id=pk).update(attempts=9)  # the last retry next: its failure gives up
    receiver.script = [Answer(500)]
    await make_due(pk)
    await webhook_jobs.deliver_webhook({"redis": pool}, pk)
    failed = await settled(pk, 10)
    assert failed.status is DeliveryStatus.FAILED
    await api(SEND_TEST, world.admin, id=endpoint_id)
    await receiver.wait(4)
    await settled((await deliveries_of(endpoint_id))[1].id, 1)
    after = await scrape(api.base)
    assert grew(before, after, "udt_webhooks_failed_total") == 1
    assert grew(before, after, "udt_webhooks_delivered_total") == 1


async def test_json_log_lines_name_the_transfer_and_the_delivery(
    world: World, receiver: Receiver, database: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    api: Api,
) -> None:
    queue = f"udt:test-webhook-logs:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    workers = Workers(worker_env(database, redis_url, queue, UDT_LOG_FORMAT="json", UDT_METRICS="off"), tmp_path / "pairs")
    try:
        endpoint_id, _ = await create_endpoint(api, world.admin, receiver.url)
        receiver.script = [Answer(503)]
        await world.stock(10)
        started, problems = await starting.start_single(world.users[1], 10, 11)
        assert problems == [] and started is not None
        await workers.start()
        await enqueue(started)
        (received,) = await receiver.wait(1)
        (delivery,) = await deliveries_of(endpoint_id)
        await settled(delivery.id, 1)

        def lines() -> list[dict]:
            text = (tmp_path / "worker-0.log").read_text()
            return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

        await until(lambda: any(line["event"] == "webhook attempt failed" for line in lines()), 10)
        (line,) = [line for line in lines() if line["event"] == "webhook attempt failed"]
        assert (line["transfer_id"], line["delivery_id"], line["webhook_id"]) == (started.id, delivery.id, received.webhook_id)
        assert (line["attempt"], line["response_status"], line["error"]) == (1, 503, "HTTP 503")
    finally:
        await workers.stop_all()


async def test_udt_dev_lets_webhooks_reach_this_machine_and_says_so(tmp_path: Path) -> None:
    async with running_dev(tmp_path) as (api, token):
        created = (await api(CREATE, token, url="http://127.0.0.1:9/hooks", events=["transfer.failed"]))
        assert created["createWebhookEndpoint"]["userErrors"] == []
    printed = next(tmp_path.glob("dev*.log")).read_text()
    assert "UDT_WEBHOOK_ALLOW_PRIVATE=1" in printed and "development only" in printed
