"""Signing, per the Standard Webhooks specification: `v1,` + base64 HMAC-SHA256 of id.timestamp.body
under the endpoint's secret; during a rotation the old secret signs beside the new one for 24 hours;
the database keeps secrets sealed, so a dump alone cannot sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from cryptography.fernet import InvalidToken

from models import clock, settings, webhook_secrets
from models.webhook_deliveries import UNREADABLE_SECRET
from models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.processes import until
from tests.support import Api, World
from tests.webhook_receiver import Receiver, receiving
from tests.webhooks_support import ENDPOINTS, ROTATE, SEND_TEST, UPDATE, create_endpoint, deliveries_of, endpoint_pk


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


async def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body(api: Api, world: World, receiver: Receiver) -> None:
    endpoint_id, secret = await create_endpoint(api, world.admin, receiver.url)
    receiver.secrets.append(secret)
    await api(SEND_TEST, world.admin, id=endpoint_id)
    (received,) = await receiver.wait(1)
    assert received.verified_by == [secret]  # standardwebhooks' own Webhook.verify
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.webhook_id}.{received.headers['webhook-timestamp']}.".encode() + received.body
    assert received.signatures == ["v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()]
    assert abs(int(received.headers["webhook-timestamp"]) - clock.now().timestamp()) < 60


async def test_after_a_rotation_both_secrets_sign_for_24_hours_then_only_the_new_one(
    api: Api, world: World, receiver: Receiver
) -> None:
    endpoint_id, old = await create_endpoint(api, world.admin, receiver.url)
    rotated = (await api(ROTATE, world.admin, id=endpoint_id))["rotateWebhookSecret"]
    new = rotated["secret"]
    assert rotated["userErrors"] == [] and new.startswith("whsec_") and new != old
    receiver.secrets += [old, new]

    await api(SEND_TEST, world.admin, id=endpoint_id)
    (during,) = await receiver.wait(1)
    assert len(during.signatures) == 2 and sorted(during.verified_by) == sorted([old, new])
    # Each secret alone verifies: a receiver that has not switched yet, and one that has.
    assert Receiver(secrets=[old]).verify(during.headers, during.body) == [old]
    assert Receiver(secrets=[new]).verify(during.headers, during.body) == [new]

    pk = await endpoint_pk(endpoint_id)
    until = (await WebhookEndpoint.get(id=pk)).previous_secret_until
    assert timedelta(hours=23, minutes=59) < until - clock.now() <= timedelta(hours=24)
    await WebhookEndpoint.filter(id=pk).update(previous_secret_until=clock.now() - timedelta(seconds=1))  # 24 h on
    await api(SEND_TEST, world.admin, id=endpoint_id)
    after = (await receiver.wait(2))[1]
    assert len(after.signatures) == 1 and after.verified_by == [new]


async def test_the_database_keeps_only_a_sealed_secret_that_another_key_cannot_open(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id, secret = await create_endpoint(api, world.admin, "http://127.0.0.1:9/hooks")
    stored = await WebhookEndpoint.get(id=await endpoint_pk(endpoint_id))
    raw = secret.removeprefix("whsec_")
    assert raw not in stored.secret and base64.b64decode(raw).hex() not in stored.secret
    assert webhook_secrets.unseal(stored.secret) == secret
    monkeypatch.setattr(settings, "SECRET_KEYS", ["another-key-of-at-least-32-characters!!"])
    with pytest.raises(InvalidToken):
        webhook_secrets.unseal(stored.secret)


async def test_secrets_sealed_under_an_old_key_open_while_it_is_still_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = webhook_secrets.seal("whsec_x")
    monkeypatch.setattr(settings, "SECRET_KEYS", ["a-new-key-of-at-least-32-characters-long", *settings.SECRET_KEYS])
    assert webhook_secrets.unseal(sealed) == "whsec_x"


async def test_an_endpoint_whose_secret_no_listed_key_opens_is_disabled_saying_how_to_mend_it(
    api: Api, world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id, old = await create_endpoint(api, world.admin, receiver.url)
    monkeypatch.setattr(settings, "SECRET_KEYS", ["a-key-that-did-not-seal-it-32-characters"])  # the old key dropped

    await api(SEND_TEST, world.admin, id=endpoint_id)
    (delivery,) = await deliveries_of(endpoint_id)

    async def ended() -> bool:
        return (await WebhookDelivery.get(id=delivery.id)).status is not DeliveryStatus.PENDING

    await until(ended, 30)
    failed = await WebhookDelivery.get(id=delivery.id)
    assert (failed.status, failed.last_error) == (DeliveryStatus.FAILED, f"The endpoint was disabled: {UNREADABLE_SECRET}")
    assert failed.attempts == 0
    (endpoint,) = [e["node"] for e in (await api(ENDPOINTS, world.admin))["webhookEndpoints"]["edges"]]
    assert (endpoint["enabled"], endpoint["disabledReason"]) == (False, UNREADABLE_SECRET)
    assert receiver.received == []

    new = (await api(ROTATE, world.admin, id=endpoint_id))["rotateWebhookSecret"]["secret"]
    await api(UPDATE, world.admin, input={"id": endpoint_id, "enabled": True})
    receiver.secrets += [old, new]
    await api(SEND_TEST, world.admin, id=endpoint_id)
    (received,) = await receiver.wait(1)
    assert received.verified_by == [new]  # the old secret, unreadable, no longer signs
