"""No server-side request forgery: a webhook URL must be https and resolve only to public addresses,
when it is saved and again at every attempt, and the attempt connects to the address it checked,
so a DNS answer that changes after the check goes nowhere. UDT_WEBHOOK_ALLOW_PRIVATE=1 lifts both."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest

from jobs import webhooks as webhook_jobs
from models import settings
from models.webhook_urls import Guard, Refused, address_problem
from models.webhooks import DeliveryStatus, WebhookEndpoint
from tests.support import Api, World
from tests.webhook_receiver import Answer, Receiver, receiving
from tests.webhooks_support import ALL_EVENTS, CREATE, SEND_TEST, create_endpoint, deliveries_of, make_due, settled

REFUSED = [
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://[::1]/hooks", "loopback"),
    ("https://localhost/hooks", "loopback"),
    ("https://10.1.2.3/hooks", "private"),
    ("https://192.168.0.10/hooks", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/hooks", "link-local"),
    ("https://224.0.0.1/hooks", "multicast"),
    ("https://240.0.0.1/hooks", "reserved"),
    ("https://0.0.0.0/hooks", "unspecified"),
    ("https://[::ffff:127.0.0.1]/hooks", "loopback"),
    ("https://100.64.0.1/hooks", "not a public address"),
    ("http://93.184.216.34/hooks", "https://"),
]


@pytest.fixture
def rules_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE", False)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


@pytest.mark.parametrize(("url", "says"), REFUSED)
async def test_a_url_that_is_not_https_or_reaches_a_non_public_address_is_refused_when_saved(
    api: Api, world: World, rules_on: None, url: str, says: str
) -> None:
    refused = (await api(CREATE, world.admin, url=url, events=ALL_EVENTS))["createWebhookEndpoint"]
    assert refused["endpoint"] is None
    ((code, message),) = [(e["code"], e["message"]) for e in refused["userErrors"]]
    assert code == "INVALID_WEBHOOK_URL" and says in message
    assert await WebhookEndpoint.filter(tenant_id=world.tenant.id).count() == 0


def test_a_public_address_passes() -> None:
    assert address_problem(ipaddress.ip_address("93.184.216.34")) is None
    assert address_problem(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")) is None


async def test_every_address_a_name_resolves_to_is_checked() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(Refused, match="resolves to 10.0.0.5, a private address"):
        await Guard(resolve=mixed, allow_private=False).check("https://hooks.example.com/in")


async def test_the_rules_are_checked_again_at_every_attempt(
    api: Api, world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id, _ = await create_endpoint(api, world.admin, receiver.url)  # saved while allowed
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE", False)
    await api(SEND_TEST, world.admin, id=endpoint_id)
    (delivery,) = await deliveries_of(endpoint_id)
    refused = await settled(delivery.id, 1)
    assert refused.status is DeliveryStatus.PENDING and refused.last_response_status is None
    assert refused.last_error.startswith("Refused: A webhook URL must start with https://")
    assert receiver.received == []


class ChangingDns:
    """A resolver that answers `first` once, then `later`: the answer changes after the check."""

    def __init__(self, first: str, later: str) -> None:
        self.answers = [first]
        self.later = later
        self.asked = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return [self.answers.pop(0) if self.answers else self.later]


def allowing(address: str):  # type: ignore[no-untyped-def]
    """The address rule, but with `address` counted as public (the receiver a test can reach)."""

    def problem(found: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        return None if str(found) == address else address_problem(found)

    return problem


async def test_a_dns_answer_that_changes_after_the_check_does_not_decide_where_the_request_goes(
    api: Api, world: World, pool
) -> None:
    # The checked answer is 127.0.0.1, which this test counts as public; every later answer is
    # 127.0.0.2, an internal address. Both receivers listen; only the checked one may be reached.
    async with receiving() as checked, receiving() as internal:
        port = int(checked.url.rsplit(":", 1)[1].split("/")[0])
        internal_port = int(internal.url.rsplit(":", 1)[1].split("/")[0])
        assert port != internal_port
        dns = ChangingDns("127.0.0.1", "127.0.0.2")
        # The test's receivers speak http: this guard keeps the address rule and lifts only https.
        guard = Guard(resolve=dns, allow_private=False, require_https=False, problem=allowing("127.0.0.1"))
        url = f"http://hooks.example.test:{port}/hooks"
        endpoint_id, secret = await create_endpoint(api, world.admin, checked.url)
        checked.secrets.append(secret)
        await WebhookEndpoint.filter(tenant_id=world.tenant.id).update(url=url)  # a name only the test's DNS knows
        sent = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]
        (delivery,) = await deliveries_of(endpoint_id)
        # The API's in-process worker makes the first attempt, with the system's DNS, which does not
        # know the name: it fails. The next attempts use the test's resolver.
        await settled(delivery.id, 1)
        checked.received.clear()
        checked.default = Answer(503)  # so that the delivery stays due for the next attempt
        await make_due(delivery.id)
        await webhook_jobs.deliver_webhook({"redis": pool, "webhook_guard": guard}, delivery.id)
        (received,) = checked.received
        assert received.verified_by and received.webhook_id == sent["id"]
        assert received.headers["host"] == f"hooks.example.test:{port}"  # the URL's host, not the address
        assert dns.asked == 1 and internal.received == []

        # The next attempt resolves to the internal address only: refused before any connection.
        await make_due(delivery.id)
        await webhook_jobs.deliver_webhook({"redis": pool, "webhook_guard": guard}, delivery.id)
        assert internal.received == [] and len(checked.received) == 1
        refused = await settled(delivery.id, 3)
        assert "resolves to 127.0.0.2, a loopback address" in refused.last_error

