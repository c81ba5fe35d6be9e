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

    with pytest.raises(Refused, match="hooks.example.com resolves to a private address;"):
        await Guard(resolve=mixed, allow_private=False).check("https://hooks.example.com/in")


async def test_the_request_goes_to_the_resolvers_first_answer() -> None:
    async def two(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]  # the system's order: its preference

    assert (await Guard(resolve=two, allow_private=False).check("https://hooks.example.com/in")).address == "93.184.216.34"


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
        assert "resolves to a loopback address" in refused.last_error and "127.0.0.2" not in refused.last_error



# Every other form of an address that reaches something internal: IPv6 that carries IPv4
# (mapped, compatible, NAT64, 6to4), the unspecified addresses, shared and benchmarking space,
# the IETF's own and the documentation blocks.
OTHER_FORMS = [
    "::ffff:7f00:1",
    "::127.0.0.1",
    "64:ff9b::a00:1",
    "64:ff9b::7f00:1",
    "64:ff9b:1::a00:1",
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "2002:c0a8:101::1",
    "0.0.0.0",
    "::",
    "100.64.0.1",
    "198.18.0.1",
    "192.0.0.8",
    "3fff::1",
]


@pytest.mark.parametrize("address", OTHER_FORMS)
def test_an_address_that_carries_or_is_a_non_public_one_is_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", OTHER_FORMS)
async def test_a_name_that_resolves_to_such_an_address_is_refused(address: str) -> None:
    async def answer(host: str, port: int) -> list[str]:
        return ["93.184.216.34", address]

    with pytest.raises(Refused, match=r"^hooks\.example\.com resolves to (a|an|not) ") as refused:
        await Guard(resolve=answer, allow_private=False).check("https://hooks.example.com/in")
    assert str(ipaddress.ip_address(address)) not in str(refused.value)  # the internal DNS is not told


# Other ways to write the loopback address: the system's resolver reads them as it, and is asked.
@pytest.mark.parametrize(
    "url",
    ["https://2130706433/", "https://0x7f.1/", "https://017700000001/", "https://127.1/", "https://0177.0.0.1/",
     "HTTPS://LOCALHOST/", "https://ｌｏｃａｌｈｏｓｔ/", "https://localhost:8443/"],
)
async def test_numeric_uppercase_and_wide_forms_of_the_loopback_are_refused(url: str) -> None:
    with pytest.raises(Refused, match="a loopback address"):
        await Guard(allow_private=False).check(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://good.example.com@127.0.0.1/", "user name"),
        ("https://good.example.com\\@127.0.0.1/", "user name"),
        ("https://。localhost/", "host name"),
        ("https://" + "a" * 64 + ".example.com/", "host name"),
        ("https://" + "a." * 130 + "example.com/", "host name"),
        ("https://good.example.com:0/", "port"),
        ("https://good.example.com:65536/", "not a URL"),
        ("https://good.example.com/\x7f", "control"),
        ("https://good.example.com/\x00", "control"),
        ("https://good.example.com/" + "a" * 2100, "at most 2048"),
    ],
)
async def test_a_url_that_hides_its_host_or_is_not_one_is_refused_before_any_lookup(url: str, says: str) -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError(f"{host} was looked up")

    with pytest.raises(Refused, match=says):
        await Guard(resolve=never, allow_private=False).check(url)


async def test_an_international_name_is_looked_up_and_sent_in_its_ascii_form() -> None:
    asked: list[str] = []

    async def answer(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]

    target = await Guard(resolve=answer, allow_private=False).check("https://Bücher.example:8443/in?x=1")
    assert asked == ["xn--bcher-kva.example"]
    assert (target.host, target.netloc, target.port, target.path) == (
        "xn--bcher-kva.example", "xn--bcher-kva.example:8443", 8443, "/in?x=1"
    )
    assert target.address == "93.184.216.34"


async def test_a_url_the_resolver_cannot_encode_is_refused_as_a_user_error(api: Api, world: World) -> None:
    refused = (await api(CREATE, world.admin, url="http://。localhost/hooks", events=ALL_EVENTS))["createWebhookEndpoint"]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_WEBHOOK_URL"]
    assert await WebhookEndpoint.filter(tenant_id=world.tenant.id).count() == 0


async def test_an_international_host_name_reaches_the_receiver_under_its_ascii_name(
    api: Api, world: World, receiver: Receiver
) -> None:
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    endpoint_id, secret = await create_endpoint(api, world.admin, f"http://ｌｏｃａｌｈｏｓｔ:{port}/hooks")
    receiver.secrets.append(secret)
    await api(SEND_TEST, world.admin, id=endpoint_id)
    (delivery,) = await deliveries_of(endpoint_id)
    assert (await settled(delivery.id, 1)).status is DeliveryStatus.DELIVERED
    (received,) = receiver.received
    assert received.verified_by and received.headers["host"] == f"localhost:{port}"
