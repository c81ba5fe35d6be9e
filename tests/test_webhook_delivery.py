"""Webhook deliveries: every ending of a transfer (single, bulk, retry, revert) reaches each subscribed
endpoint exactly once, signed; failures are retried on the schedule, Retry-After is honoured, a 410
or 3 days of failures disable the endpoint; a worker killed between the commit and the send loses
nothing and sends nothing twice. A real receiver on a local port verifies every delivery with
`standardwebhooks`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from arq.jobs import Job, JobStatus
from tortoise.transactions import in_transaction

from graph.core.relay import pk_of, to_global_id
from jobs import webhooks as webhook_jobs
from jobs.webhook_http import retry_after
from models import (
    bulk,
    clock,
    settings,
    starting,
    webhook_deliveries,
    webhook_secrets,
    webhooks,
)
from models.transfers import Transfer, TransferStatus
from models.userdata import OwnedRecord
from models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.processes import Workers, enqueue, finished, until, worker_env
from tests.support import Api, World, free_port, run_pairs
from tests.test_bulk_transfer import CANCEL, RETRY
from tests.test_revert import revert, transfer
from tests.webhook_receiver import Answer, Received, Receiver, receiving
from tests.webhooks_support import (
    ENDPOINTS,
    REDELIVER,
    SEND_TEST,
    create_endpoint,
    deliveries_of,
    endpoint_pk,
    make_due,
    settled,
)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


async def hooked(api: Api, world: World, receiver: Receiver, events: list[str] | None = None) -> str:
    """An endpoint of the world's tenant sending to `receiver`, which knows its secret."""
    endpoint_id, secret = await create_endpoint(api, world.admin, receiver.url, events)
    receiver.secrets.append(secret)
    return endpoint_id


def announced(received: Received, event: str, transfer_id: str) -> dict:
    """The transfer a verified delivery announces."""
    assert received.verified_by, "the signature must verify with the endpoint's secret"
    assert received.payload["type"] == event
    data = received.payload["data"]["transfer"]
    assert data["id"] == transfer_id
    return data


async def sweep(pool) -> None:  # type: ignore[no-untyped-def]
    """What every worker does every few seconds: offer the deliveries due."""
    await webhook_jobs.sweep(pool)


async def test_a_single_transfer_that_succeeds_is_announced_once_signed_with_its_outcome(
    api: Api, world: World, receiver: Receiver
) -> None:
    await world.give(10, "CCR", 3)
    endpoint_id = await hooked(api, world, receiver)
    transfer_id = await transfer(api, world, 10, 11)

    (received,) = await receiver.wait(1)
    data = announced(received, "transfer.succeeded", transfer_id)
    assert data == {
        "id": transfer_id, "kind": "SINGLE", "status": "SUCCEEDED", "message": "Data Transfer Successful",
        "totalPairs": 1, "succeededPairs": 1, "failedPairs": 0, "failedUserIds": [], "revertOf": None,
        "startedAt": data["startedAt"], "finishedAt": data["finishedAt"],
    }
    assert data["startedAt"] and data["finishedAt"]
    assert received.headers["content-type"] == "application/json"
    (delivery,) = await deliveries_of(endpoint_id)
    delivery = await settled(delivery.id, 1)
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 1 and delivery.last_response_status == 200
    # Its GraphQL ID is its webhook-id.
    listed = (await api(ENDPOINTS, world.admin))["webhookEndpoints"]["edges"][0]["node"]["deliveries"]["edges"]
    assert [(d["node"]["id"], d["node"]["status"], d["node"]["transfer"]["id"]) for d in listed] == [
        (received.webhook_id, "DELIVERED", transfer_id)
    ]
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 1  # once


async def test_bulk_endings_partially_failed_failed_and_the_retry_of_one_are_announced(
    api: Api, world: World, receiver: Receiver, pool
) -> None:
    for source in (10, 12, 14):
        await world.give(source, "CCR", 2)
    await hooked(api, world, receiver)
    upload = await bulk.create_upload(world.users[1], "f.csv", b"Source User ID,Target User ID\n10,11\n12,13\n")
    partial, problems = await bulk.start(world.users[1], upload)
    assert problems == [] and partial is not None
    single, problems = await starting.start_single(world.users[1], 14, 15)
    assert problems == [] and single is not None
    await OwnedRecord.filter(owner_id__in=[world.pk(12), world.pk(14)]).delete()  # emptied since the start
    await run_pairs(partial.id)  # applied here, then offered by the sweep: no job was queued for them
    await run_pairs(single.id)
    await sweep(pool)

    received = await receiver.wait(2)
    by_type = {r.payload["type"]: r for r in received}
    data = announced(by_type["transfer.partially_failed"], "transfer.partially_failed", to_global_id("Transfer", partial.id))
    assert (data["kind"], data["succeededPairs"], data["failedPairs"], data["failedUserIds"]) == ("BULK", 1, 1, [12, 13])
    data = announced(by_type["transfer.failed"], "transfer.failed", to_global_id("Transfer", single.id))
    assert (data["kind"], data["status"], data["failedUserIds"]) == ("SINGLE", "FAILED", [14, 15])

    await world.give(12, "CCR", 1)
    retried = (await api(RETRY, world.admin, id=to_global_id("Transfer", partial.id)))["retryFailedTransfers"]
    assert retried["userErrors"] == []
    await api.wait_finished(world.admin, retried["transfer"]["id"])
    received = await receiver.wait(3)
    data = announced(received[2], "transfer.succeeded", retried["transfer"]["id"])
    assert (data["kind"], data["totalPairs"]) == ("BULK", 1)


async def test_a_cancelled_transfer_and_a_revert_are_announced(api: Api, world: World, receiver: Receiver) -> None:
    await world.stock(10, 12)
    await hooked(api, world, receiver)
    queued, problems = await starting.start_single(world.users[1], 12, 13)  # not queued: cancelled first
    assert problems == [] and queued is not None
    cancelled = (await api(CANCEL, world.admin, id=to_global_id("Transfer", queued.id)))["cancelTransfer"]
    assert cancelled["transfer"]["status"] == "CANCELLED"
    (received,) = await receiver.wait(1)
    data = announced(received, "transfer.cancelled", cancelled["transfer"]["id"])
    assert data["message"] == cancelled["transfer"]["message"]

    original = await transfer(api, world, 10, 11)
    reverted = await revert(api, world, original)
    received = await receiver.wait(3)
    data = announced(received[2], "transfer.succeeded", reverted["id"])
    assert (data["kind"], data["revertOf"]) == ("REVERT", original)


async def test_only_enabled_endpoints_subscribed_to_the_event_get_it(api: Api, world: World, receiver: Receiver) -> None:
    await world.stock(10)
    failed_only = await hooked(api, world, receiver, ["transfer.failed"])
    async with receiving() as other:
        disabled = await hooked(api, world, other)
        await WebhookEndpoint.filter(id=await endpoint_pk(disabled)).update(enabled=False)
        await transfer(api, world, 10, 11)
        await asyncio.sleep(1)
        assert other.received == [] and receiver.received == []
    assert await deliveries_of(failed_only) == [] and await deliveries_of(disabled) == []


async def test_a_slow_receiver_costs_the_transfer_nothing(api: Api, world: World, receiver: Receiver) -> None:
    receiver.default = Answer(hang=True)
    await world.stock(10)
    endpoint_id = await hooked(api, world, receiver)
    await transfer(api, world, 10, 11)  # SUCCEEDED while its delivery waits for an answer
    await receiver.wait(1)
    (delivery,) = await deliveries_of(endpoint_id)
    assert delivery.status is DeliveryStatus.PENDING and delivery.attempts == 0 and delivery.lease_until is not None


async def retry_now(pool, pk: int, attempt: int) -> WebhookDelivery:  # type: ignore[no-untyped-def]
    """Move the clock on to the delivery's next attempt and make it (the worker may beat us to it)."""
    await make_due(pk)
    await webhook_jobs.deliver_webhook({"redis": pool}, pk)
    return await settled(pk, attempt)


async def failing_delivery(api: Api, world: World, receiver: Receiver, answers: list[Answer], pool) -> WebhookDelivery:  # type: ignore[no-untyped-def]
    """A test delivery that has met the scripted answers, one attempt each (made due in between)."""
    receiver.script = list(answers)
    endpoint_id = await hooked(api, world, receiver)
    sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]
    pk = pk_of(sent["id"], "WebhookDelivery")
    assert pk is not None
    delivery = await settled(pk, 1)
    for attempt in range(2, len(answers) + 1):
        delivery = await retry_now(pool, pk, attempt)
    return delivery


async def test_a_failure_is_retried_about_five_seconds_later_then_delivered(
    api: Api, world: World, receiver: Receiver
) -> None:
    endpoint_id = await hooked(api, world, receiver)
    receiver.script = [Answer(500)]
    sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]
    pk = pk_of(sent["id"], "WebhookDelivery")
    first = await settled(pk, 1)
    assert (first.status, first.last_response_status, first.last_error) == (DeliveryStatus.PENDING, 500, "HTTP 500")
    wait = first.next_attempt_at - clock.now()
    assert timedelta(seconds=3) < wait <= timedelta(seconds=5.5)  # 5 s, give or take the jitter
    received = await receiver.wait(2, timeout=15)  # the worker retries on its own
    assert received[0].webhook_id == received[1].webhook_id == sent["id"]
    assert all(r.verified_by for r in received)
    second = await settled(pk, 2)
    assert second.status is DeliveryStatus.DELIVERED and second.next_attempt_at is None


def test_the_schedule_is_the_issues_with_jitter_then_gives_up() -> None:
    hours = 3600
    expected = [5, 300, 1800, 2 * hours, 5 * hours, 10 * hours, 14 * hours, 20 * hours, 24 * hours]
    for attempt, seconds in enumerate(expected, start=1):
        waits = [webhook_deliveries.next_wait(attempt, None).total_seconds() / seconds for _ in range(200)]
        assert all(0.9 <= w <= 1.1 for w in waits)
        # Up to 10 % early or late: of 200 waits, some fall in each outer half of that.
        assert min(waits) < 0.95 and max(waits) > 1.05
    assert webhook_deliveries.next_wait(len(expected) + 1, None) is None


async def quiet_delivery(world: World, due: timedelta = timedelta(0)) -> WebhookDelivery:
    """A delivery written straight to the database, with no API and so no worker that sends it."""
    endpoint = await WebhookEndpoint.create(
        tenant_id=world.tenant.id, url="http://127.0.0.1:9/hooks", events=list(webhooks.EVENTS),
        secret=webhook_secrets.seal(webhook_secrets.new_secret()),
    )
    return await WebhookDelivery.create(
        endpoint_id=endpoint.id, event=webhooks.TEST_EVENT, body="{}", next_attempt_at=clock.now() + due
    )


async def test_a_delivery_a_worker_holds_is_claimed_by_no_other_until_its_lease_runs_out(world: World) -> None:
    delivery = await quiet_delivery(world)
    assert await webhook_deliveries.claim(delivery.id) is not None
    assert await webhook_deliveries.claim(delivery.id) is None
    await WebhookDelivery.filter(id=delivery.id).update(lease_until=clock.now() - timedelta(seconds=1))
    assert await webhook_deliveries.claim(delivery.id) is not None


async def test_a_delivery_is_claimed_only_once_due(world: World) -> None:
    delivery = await quiet_delivery(world, due=timedelta(minutes=5))
    assert await webhook_deliveries.claim(delivery.id) is None
    await make_due(delivery.id)
    assert await webhook_deliveries.claim(delivery.id) is not None


async def test_an_ending_and_its_deliveries_commit_or_roll_back_together(
    api: Api, world: World, receiver: Receiver
) -> None:
    await hooked(api, world, receiver)
    await world.stock(10)
    started, problems = await starting.start_single(world.users[1], 10, 11)
    assert problems == [] and started is not None
    with pytest.raises(RuntimeError):
        async with in_transaction() as db:
            ended = await Transfer.get(id=started.id).using_db(db)
            ended.status = TransferStatus.SUCCEEDED
            await ended.save(using_db=db, update_fields=["status"])
            await webhooks.announce_end(ended, db)
            raise RuntimeError("the transaction that settles the ending fails")
    assert await WebhookDelivery.filter(transfer_id=started.id).count() == 0


async def test_after_the_last_retry_the_delivery_fails(api: Api, world: World, receiver: Receiver, pool) -> None:
    receiver.default = Answer(500)
    endpoint_id = await hooked(api, world, receiver)
    sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]
    pk = pk_of(sent["id"], "WebhookDelivery")
    await settled(pk, 1)
    await WebhookDelivery.filter(id=pk).update(attempts=9)  # the ninth retry is next
    last = await retry_now(pool, pk, 10)
    assert (last.status, last.next_attempt_at) == (DeliveryStatus.FAILED, None)


@pytest.mark.parametrize(
    ("header", "at_least"),
    [
        ("120", timedelta(seconds=120)),
        (None, timedelta(hours=2)),  # None: an HTTP date two hours on
        ("1" + "0" * 20, timedelta(hours=24)),  # a day at most, however many seconds are asked
        ("9" * 5000, timedelta(hours=24)),  # more digits than Python reads as an int
    ],
)
async def test_retry_after_is_honoured(
    api: Api, world: World, receiver: Receiver, header: str | None, at_least: timedelta
) -> None:
    from email.utils import format_datetime

    value = header or format_datetime(clock.now() + timedelta(hours=2), usegmt=True)
    endpoint_id = await hooked(api, world, receiver)
    receiver.script = [Answer(503, {"Retry-After": value})]
    sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]
    first = await settled(pk_of(sent["id"], "WebhookDelivery"), 1)
    assert first.status is DeliveryStatus.PENDING
    # instead of the schedule's 5 s; less the second an HTTP date rounds to, and the test's own time
    assert at_least - timedelta(seconds=3) <= first.next_attempt_at - clock.now() <= at_least


def test_retry_after_lengthens_a_wait_up_to_a_day_and_never_shortens_one() -> None:
    assert webhook_deliveries.next_wait(1, timedelta(days=30)) == timedelta(hours=24)  # an HTTP date a month on
    assert webhook_deliveries.next_wait(3, timedelta(seconds=1)) >= timedelta(minutes=27)  # the schedule's 30 min


@pytest.mark.parametrize("header", ["", "soon", "-5", "1.5", "²", "٣"])
def test_a_retry_after_that_is_no_number_of_seconds_or_date_is_ignored(header: str) -> None:
    assert retry_after(header, clock.now()) is None


async def test_a_timeout_a_refused_connection_and_a_redirect_are_failures(
    api: Api, world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, pool
) -> None:
    monkeypatch.setattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 1)
    hung = await failing_delivery(api, world, receiver, [Answer(hang=True)], pool)
    assert hung.status is DeliveryStatus.PENDING and hung.last_error.startswith("No answer within 1 s")

    async with receiving() as redirecting:
        redirecting.default = Answer(302, {"Location": receiver.url})
        before = len(receiver.received)
        moved = await failing_delivery(api, world, redirecting, [Answer(302, {"Location": receiver.url})], pool)
        assert moved.status is DeliveryStatus.PENDING and moved.last_response_status == 302
        assert "redirects are not followed" in moved.last_error
        assert len(receiver.received) == before  # the Location was never asked for

    closed = f"http://127.0.0.1:{free_port()}/hooks"
    endpoint_id, _ = await create_endpoint(api, world.admin, closed)
    sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]
    refused = await settled(pk_of(sent["id"], "WebhookDelivery"), 1)
    assert refused.status is DeliveryStatus.PENDING and refused.last_response_status is None
    assert refused.last_error.startswith("ConnectError")


async def test_a_receivers_body_is_never_read_so_an_endless_one_costs_nothing(
    api: Api, world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, pool
) -> None:
    monkeypatch.setattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 1)
    receiver.default = Answer(endless=True)
    endpoint_id, _ = await create_endpoint(api, world.admin, receiver.url)
    sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]
    delivered = await settled(pk_of(sent["id"], "WebhookDelivery"), 1)
    assert delivered.status is DeliveryStatus.DELIVERED and delivered.last_response_status == 200


async def ended(api: Api, world: World, source: int, target: int) -> None:
    await world.stock(source)
    await transfer(api, world, source, target)


async def test_a_410_disables_the_endpoint_at_once(api: Api, world: World, receiver: Receiver) -> None:
    receiver.default = Answer(410)
    endpoint_id = await hooked(api, world, receiver)
    await ended(api, world, 10, 11)
    (delivery,) = await deliveries_of(endpoint_id)
    delivery = await settled(delivery.id, 1)
    assert delivery.status is DeliveryStatus.FAILED and delivery.last_response_status == 410
    endpoint = await WebhookEndpoint.get(id=await endpoint_pk(endpoint_id))
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    await ended(api, world, 12, 13)
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 1 and len(await deliveries_of(endpoint_id)) == 1  # nothing more for it
    shown = (await api(ENDPOINTS, world.admin))["webhookEndpoints"]["edges"][0]["node"]
    assert shown["enabled"] is False and "410" in shown["disabledReason"]


async def test_three_days_of_only_failures_disable_the_endpoint_with_the_reason(
    api: Api, world: World, receiver: Receiver, pool
) -> None:
    receiver.default = Answer(500)
    endpoint_id = await hooked(api, world, receiver)
    pk = await endpoint_pk(endpoint_id)
    await ended(api, world, 10, 11)
    (first,) = await deliveries_of(endpoint_id)
    await settled(first.id, 1)
    since = (await WebhookEndpoint.get(id=pk)).failing_since
    assert since is not None
    # Two days and 23 hours of failures: still on.
    await WebhookEndpoint.filter(id=pk).update(failing_since=clock.now() - timedelta(days=2, hours=23))
    await retry_now(pool, first.id, 2)
    assert (await WebhookEndpoint.get(id=pk)).enabled
    # Three days: the next failure disables it, saying why; its pending deliveries end FAILED.
    await ended(api, world, 12, 13)
    second = (await deliveries_of(endpoint_id))[1]
    await settled(second.id, 1)
    await WebhookEndpoint.filter(id=pk).update(failing_since=clock.now() - timedelta(days=3))
    await retry_now(pool, first.id, 3)
    endpoint = await WebhookEndpoint.get(id=pk)
    assert not endpoint.enabled and "failed since" in endpoint.disabled_reason and "3 days" in endpoint.disabled_reason
    assert {d.status for d in await deliveries_of(endpoint_id)} == {DeliveryStatus.FAILED}


async def test_a_failed_webhook_test_says_nothing_of_the_endpoints_three_days(
    api: Api, world: World, receiver: Receiver
) -> None:
    receiver.default = Answer(500)
    endpoint_id = await hooked(api, world, receiver)
    pk = await endpoint_pk(endpoint_id)
    await api(SEND_TEST, world.admin, id=endpoint_id)
    (test,) = await deliveries_of(endpoint_id)
    await settled(test.id, 1)
    assert (await WebhookEndpoint.get(id=pk)).failing_since is None
    await WebhookEndpoint.filter(id=pk).update(failing_since=clock.now() - timedelta(days=4))
    await api(REDELIVER, world.admin, id=webhook_deliveries.delivery_id(test.id))
    await settled(test.id, 2)
    assert (await WebhookEndpoint.get(id=pk)).enabled


async def test_a_success_starts_the_three_days_again(api: Api, world: World, receiver: Receiver, pool) -> None:
    receiver.script = [Answer(500)]
    endpoint_id = await hooked(api, world, receiver)
    pk = await endpoint_pk(endpoint_id)
    await ended(api, world, 10, 11)
    (delivery,) = await deliveries_of(endpoint_id)
    await settled(delivery.id, 1)
    assert (await WebhookEndpoint.get(id=pk)).failing_since is not None
    await retry_now(pool, delivery.id, 2)
    assert (await WebhookEndpoint.get(id=pk)).failing_since is None


async def test_redeliver_sends_a_delivery_again_with_the_same_webhook_id(
    api: Api, world: World, receiver: Receiver
) -> None:
    endpoint_id = await hooked(api, world, receiver)
    await ended(api, world, 10, 11)
    (first,) = await receiver.wait(1)
    (delivery,) = await deliveries_of(endpoint_id)
    await settled(delivery.id, 1)
    again = (await api(REDELIVER, world.admin, id=first.webhook_id))["redeliverWebhook"]
    assert again["userErrors"] == [] and again["delivery"]["status"] == "PENDING"
    received = await receiver.wait(2)
    assert received[1].webhook_id == first.webhook_id and received[1].body == first.body
    assert received[1].verified_by
    assert (await settled(delivery.id, 2)).status is DeliveryStatus.DELIVERED


async def test_redeliver_while_an_attempt_is_in_flight_sends_nothing_beside_it(
    api: Api, world: World, receiver: Receiver, pool
) -> None:
    receiver.script = [Answer(hang=True)]
    endpoint_id = await hooked(api, world, receiver)
    await ended(api, world, 10, 11)
    (first,) = await receiver.wait(1)
    again = (await api(REDELIVER, world.admin, id=first.webhook_id))["redeliverWebhook"]
    assert again["userErrors"] == []
    (delivery,) = await deliveries_of(endpoint_id)
    assert delivery.lease_until is not None, "the attempt in flight keeps its lease"
    offered = Job(webhook_jobs.job_id(delivery), pool, _queue_name=webhook_jobs.queue_name())

    async def offer_done() -> bool:  # queued by the mutation, gone once a worker has run it
        return await offered.status() is JobStatus.not_found

    await until(offer_done, 30)
    assert len(receiver.received) == 1


async def test_send_test_webhook_sends_a_signed_webhook_test_event(api: Api, world: World, receiver: Receiver) -> None:
    endpoint_id = await hooked(api, world, receiver)
    sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]
    assert sent["userErrors"] == [] and sent["delivery"]["event"] == "webhook.test"
    (received,) = await receiver.wait(1)
    assert received.verified_by and received.webhook_id == sent["delivery"]["id"]
    assert received.payload["type"] == "webhook.test"
    assert received.payload["data"] == {"endpoint": {"id": endpoint_id}}


@pytest.mark.parametrize(
    ("hang", "sent"),
    [
        pytest.param("HANG_BEFORE_WEBHOOK_CLAIM", 1, id="before-the-claim"),
        pytest.param("HANG_BEFORE_WEBHOOK", 1, id="between-the-commit-and-the-send"),
        # At least once, as the specification allows: the receiver got it, the database never
        # heard, so the lease runs out and it goes again; the receiver tells by webhook-id.
        pytest.param("HANG_BEFORE_WEBHOOK_RECORD", 2, id="after-the-send-before-the-outcome-is-stored"),
    ],
)
async def test_a_worker_killed_mid_delivery_loses_nothing_and_sends_again_only_what_it_had_sent(
    hang: str, sent: int, world: World, receiver: Receiver, database: str, redis_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, api: Api,
) -> None:
    """The worker is killed (SIGKILL) where `hang` (tests/slow_worker.py) stops it; another takes over."""
    queue = f"udt:test-webhooks:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    # A short time limit, so that the dead worker's lease (three of them) runs out soon.
    workers = Workers(worker_env(database, redis_url, queue, UDT_WEBHOOK_TIMEOUT_SECONDS="2"), tmp_path / "pairs")
    marker = tmp_path / "webhooks"
    try:
        await world.stock(10)
        endpoint_id = await hooked(api, world, receiver)
        started, problems = await starting.start_single(world.users[1], 10, 11)
        assert problems == [] and started is not None
        doomed = await workers.start(**{hang: str(marker)})
        await enqueue(started)
        await until(lambda: marker.exists(), 60)  # the ending committed, the worker stopped where `hang` says
        assert await finished(started) and len(receiver.received) == sent - 1
        (delivery,) = await deliveries_of(endpoint_id)
        assert delivery.status is DeliveryStatus.PENDING
        doomed.kill()
        await doomed.wait()

        await workers.start()  # arq runs a dead worker's job again, the sweep a delivery whose lease ran out
        await receiver.wait(sent, timeout=90)
        delivered = await settled(delivery.id, 1, timeout=60)
        assert delivered.status is DeliveryStatus.DELIVERED and delivered.attempts == 1
        await asyncio.sleep(2 * float(workers.env["UDT_RECONCILE_SECONDS"]))
        assert len(receiver.received) == sent
        for received in receiver.received:
            assert received.webhook_id == webhook_deliveries.delivery_id(delivery.id)
            assert announced(received, "transfer.succeeded", to_global_id("Transfer", started.id))
        assert (await Transfer.get(id=started.id)).status.value == "SUCCEEDED"
    finally:
        await workers.stop_all()


async def test_receivers_that_never_answer_hold_none_of_the_transfers_job_slots(
    api: Api, world: World, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    endpoint_id = await hooked(api, world, receiver)
    for _ in range(settings.WORKER_MAX_JOBS + 2):  # more hanging attempts than a worker has slots for lanes
        await api(SEND_TEST, world.admin, id=endpoint_id)
    await receiver.wait(settings.WEBHOOK_MAX_JOBS)  # the webhook worker's slots, all waiting
    await world.stock(10)
    started = asyncio.get_running_loop().time()
    await transfer(api, world, 10, 11)
    assert asyncio.get_running_loop().time() - started < 5  # not behind a 10 s timeout
    assert len(receiver.received) == settings.WEBHOOK_MAX_JOBS  # the rest wait their turn, due
