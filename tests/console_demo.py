"""What the console's transfer and history tests share: the demo tenant (its admin's token, and
pairs of its users each used once in a session, so that every transfer has data to move),
transfers started through the API, a queue of a test's own that only the worker processes the
test starts serve (tests/slow_worker.py), and the console opened on a page, signed in.
A test module imports the fixtures it uses (`demo_fixture`, ...): they are named `demo`, ..."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from models import running, seed, settings
from models.tenancy import ApiToken, Tenant, User
from models.transfers import Transfer, TransferStatus
from tests.console_support import PHONE, ConsolePage
from tests.processes import Workers, worker_env
from tests.support import START, Api

# Demo users that are active, no tenant administrators and not the worked example's (19 to 22),
# from the top down: every test here takes its own, once, so each source still has its data.
_UNUSED: Iterator[int] = (uid for uid in range(219, 100, -1) if uid % 10 != 7)

START_BULK = """
mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) {
  transfer { id } userErrors { code message } } }"""


def fresh_users(count: int) -> list[int]:
    """`count` demo User IDs no test of this session has used."""
    return [next(_UNUSED) for _ in range(count)]


@dataclass
class Demo:
    api: Api
    tenant: Tenant
    token: str  # the demo tenant's admin

    async def start_single(self, source: int, target: int) -> str:
        started = (await self.api(START, self.token, s=source, t=target, confirm=True))["startTransfer"]
        assert started["userErrors"] == [], started
        return started["transfer"]["id"]

    async def start_bulk(self, pairs: list[tuple[int, int]]) -> str:
        content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
        upload = (await self.api.upload(self.token, content))["upload"]
        assert upload["errorCount"] == 0, upload
        started = (await self.api(START_BULK, self.token, id=upload["id"]))["startBulkTransfer"]
        assert started["userErrors"] == [], started
        return started["transfer"]["id"]

    async def set_tenant_admin(self, user_id: int, value: bool) -> None:
        await User.filter(tenant=self.tenant, user_id=user_id).update(tenant_admin=value)


@pytest.fixture(name="demo")
async def demo_fixture(api: Api) -> AsyncIterator[Demo]:
    """The demo tenant; whatever a test left queued or running there is cancelled after it, so
    that the next test's bulk transfer may start."""
    await seed.seed_demo()
    tenant = await Tenant.get(slug="demo")
    admin = await User.get(tenant=tenant, username="admin")
    yield Demo(api, tenant, await ApiToken.issue(admin))
    for left in await Transfer.filter(tenant=tenant, status__in=[TransferStatus.QUEUED, TransferStatus.RUNNING]):
        await running.cancel(left)


@pytest.fixture(name="own_queue")
def own_queue_fixture(monkeypatch: pytest.MonkeyPatch, demo: Demo) -> str:
    """Transfers the API starts from now on wait on a queue the app's own worker does not serve."""
    name = f"udt:test-console:{id(demo)}"
    monkeypatch.setattr(settings, "QUEUE_NAME", name)
    return name


@pytest.fixture(name="workers")
async def workers_fixture(database: str, redis_url: str, own_queue: str, tmp_path: Path) -> AsyncIterator[Workers]:
    """`udt worker` processes on the test's own queue, started when the test says (slow ones too)."""
    found = Workers(worker_env(database, redis_url, own_queue), tmp_path / "pairs")
    yield found
    await found.stop_all()


async def fits_a_phone(console: ConsolePage) -> bool:
    """At 390 px wide (about a 1280 px screen at 300 %), nothing makes the page scroll sideways:
    wide tables scroll in their own box."""
    await console.page.set_viewport_size(PHONE)
    return await console.page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


async def open_signed_in(console: ConsolePage, demo: Demo, path: str) -> None:
    """The console at `path`, signed in by a sign-in link (the token in the URL's fragment)."""
    await console.open(f"{path}#token={demo.token}")
    await console.expect_shell()
