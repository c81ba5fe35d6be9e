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
from models.webhooks import WebhookEndpoint
from tests.support import Api, World
from tests.webhook_receiver import Receiver, receiving
from tests.webhooks_support import ROTATE, SEND_TEST, create_endpoint, endpoint_pk


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
