"""The demo tenant of the console's browser tests, in one place, so that their modules (and the
other tests that use the demo tenant, like tests/test_bulk_transfer.py) pass in any order, on
either database. tests/conftest.py loads this module as a plugin: its fixtures are everywhere.

- `demo`: the demo tenant as `udt dev` loads it, and its admin's token. Each test starts with the
  seed's worked example (John Smith 19 and James Anderson 20, whose data goes to Jenny Andrews 21
  and Sam Rodgers 22) owning its data as seeded: a finished transfer that moved it (this test's,
  another module's) is undone first. After the test, whatever it left queued or running is
  cancelled: a tenant runs one bulk transfer at a time.
- Users 19 to 22 are the worked example's alone. Any other test takes its users from
  `fresh_users(n)`, demo users no test of the session has transferred (and now marked used),
  or, when it only previews and moves nothing, from `untouched_users(n)`.
- `own_queue`, `workers`: transfers the API starts wait on a queue of the test's own, served
  only by the `udt worker` processes the test starts (tests/slow_worker.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from models import running, seed, settings
from models.tenancy import ApiToken, Tenant, User
from graph.core.relay import to_global_id
from models.transfers import Transfer, TransferItem, TransferKind, TransferStatus
from tests.console_support import PHONE, ConsolePage
from tests.processes import Workers, worker_env
from tests.support import START, Api

WORKED_EXAMPLE = {21: 19, 22: 20}  # the seed's example: 19 in Jenny Andrews' To User ID cell, 20 in Sam Rodgers'
_EXAMPLE_USERS = [*WORKED_EXAMPLE, *WORKED_EXAMPLE.values()]
# Active demo users with data that are neither tenant administrators (1 to 3) nor the worked
# example's, from the top down; every tenth from the seventh on is inactive.
_POOL = [uid for uid in range(219, 22, -1) if uid % 10 != 7]
_used: set[int] = set()
_APP_QUEUE = settings.QUEUE_NAME  # the queue the app's own worker serves, whatever a test's is

START_BULK = """
mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) {
  transfer { id } userErrors { code message } } }"""
REVERT = """
mutation ($id: ID!) { revertTransfer(input: {transferId: $id, confirm: true}) {
  transfer { id } userErrors { code message } } }"""
REVERTIBLE = "query ($id: ID!) { transfer(id: $id) { revertibleUntil } }"


def untouched_users(count: int) -> list[int]:
    """`count` demo User IDs that still own their seeded data, for a test that moves nothing."""
    found = [uid for uid in _POOL if uid not in _used][:count]
    assert len(found) == count, "the demo tenant has no more untouched users: take fewer"
    return found


def fresh_users(count: int) -> list[int]:
    """`count` demo User IDs no test of this session has transferred; from now on, used."""
    found = untouched_users(count)
    _used.update(found)
    return found


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

    async def restore_worked_example(self) -> None:
        """Undo, newest first and through the API, every finished transfer that moved the worked
        example's data and is not undone yet."""
        moved = await TransferItem.filter(
            transfer__tenant=self.tenant, transfer__kind__in=[TransferKind.SINGLE, TransferKind.BULK],
            source__user_id__in=_EXAMPLE_USERS, finished_at__isnull=False,
        ).values_list("transfer_id", flat=True)
        undone = await Transfer.filter(revert_of_id__in=moved).values_list("revert_of_id", flat=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(settings, "QUEUE_NAME", _APP_QUEUE)  # served by the app's own worker
            for pk in sorted(set(moved) - set(undone), reverse=True):
                gid = to_global_id("Transfer", pk)
                if not (await self.api(REVERTIBLE, self.token, id=gid))["transfer"]["revertibleUntil"]:
                    continue  # it moved nothing that can come back (cancelled before its pair, failed)
                started = (await self.api(REVERT, self.token, id=gid))["revertTransfer"]
                assert started["userErrors"] == [], started
                done = await self.api.wait_finished(self.token, started["transfer"]["id"])
                assert done["status"] == "SUCCEEDED", done

    async def cancel_what_is_left(self) -> None:
        for left in await Transfer.filter(tenant=self.tenant, status__in=[TransferStatus.QUEUED, TransferStatus.RUNNING]):
            await running.cancel(left)


@pytest.fixture(name="demo")
async def demo_fixture(api: Api) -> AsyncIterator[Demo]:
    """The demo tenant and its admin's token; the worked example as seeded before and after the
    test, and nothing left queued or running after it."""
    await seed.seed_demo()
    tenant = await Tenant.get(slug="demo")
    admin = await User.get(tenant=tenant, username="admin")
    found = Demo(api, tenant, await ApiToken.issue(admin))
    await found.restore_worked_example()
    yield found
    await found.cancel_what_is_left()
    await found.restore_worked_example()  # for the tests that follow, in this module or another


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


ZOOMED = {"width": 640, "height": 450}  # a 1,280 by 900 screen at 200 %


async def fits(console: ConsolePage, viewport: dict[str, int]) -> bool:
    """At this size nothing makes the page scroll sideways: wide tables scroll in their own box."""
    await console.page.set_viewport_size(viewport)
    return await console.page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


async def fits_a_phone(console: ConsolePage) -> bool:
    """At 390 px wide (about a 1280 px screen at 300 %) and at 200 % zoom, nothing makes the page
    scroll sideways."""
    return await fits(console, ZOOMED) and await fits(console, PHONE)


async def open_signed_in(console: ConsolePage, demo: Demo, path: str) -> None:
    """The console at `path`, signed in by a sign-in link (the token in the URL's fragment)."""
    await console.open(f"{path}#token={demo.token}")
    await console.expect_shell()
