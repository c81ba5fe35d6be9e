"""A transfer's page in the console, in a real browser, on the demo tenant: live progress fed by
the subscription that survives a reload, "Cancel", the seed's result messages, the audit log of
the errors as a real download, "Retry failed pairs", the pairs and their outcomes, and "Undo"
with its plan. Transfers are started through the API; controls are found by role and name."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from models import settings

from tests.accessibility import assert_accessible
from tests.console_demo import Demo, fits_a_phone, fresh_users, open_signed_in
from tests.console_support import PAGE_TIMEOUT_MS, ConsolePage, require_browser
from tests.processes import Workers
from tests.support import TRANSFER

require_browser()

SUCCESS = "Data Transfer Successful"
ERRORS = "Errors occurred during data transfer. The user IDs listed below were not transferred."
AUDIT_LOG = "Click here to download an audit log of the errors that occurred in the most recent data transfer operation."
RUN_MS = 90_000  # a worker process starting on a loaded machine, then its pairs
REVERT = """query ($id: ID!) { transfer(id: $id) { revertibleUntil revertedBy { id kind status
  items(first: 10) { edges { node { sourceUser { userId } targetUser { userId } } } } } } }"""


def progress(page: Page):
    return page.get_by_role("progressbar", name="Transfer progress")


def main(page: Page):
    """The screen itself, not the live region that repeats what it says."""
    return page.get_by_role("main")


async def value_of(page: Page) -> int:
    return int(await progress(page).get_attribute("aria-valuenow") or "-1")


async def test_the_progress_bar_follows_the_subscription_survives_a_reload_and_ends_at_the_total(
    console: ConsolePage, demo: Demo, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "BULK_LANES", 1)  # one pair after another, in order
    users = fresh_users(12)
    pairs = list(zip(users[::2], users[1::2]))
    gid = await demo.start_bulk(pairs)  # waits on the test's own queue: no worker yet
    page = console.page
    await open_signed_in(console, demo, f"/console/transfers/{gid}")
    bar = progress(page)
    await expect(bar).to_have_attribute("aria-valuemax", "6", timeout=PAGE_TIMEOUT_MS)
    await expect(bar).to_have_attribute("aria-valuenow", "0")
    await expect(main(page).get_by_text("Status: Queued")).to_be_visible()

    await workers.start(SLOW_PAIR_SECONDS="1.5")
    await expect(bar).to_have_attribute("aria-valuenow", re.compile("^[12]$"), timeout=RUN_MS)
    await expect(main(page).get_by_text("Status: Running")).to_be_visible()
    await expect(page.get_by_test_id("live-polite")).to_have_text(re.compile(r"^Transfer \d+ % done: [12] of 6 pairs\.$"))
    await assert_accessible(page, "a running transfer's page")

    seen = await value_of(page)
    await page.reload()  # the page shows the running transfer again, from where it is
    await expect(bar).to_have_attribute("aria-valuemax", "6", timeout=PAGE_TIMEOUT_MS)
    assert await value_of(page) >= seen
    await expect(main(page).get_by_text(SUCCESS)).to_be_visible(timeout=RUN_MS)
    await expect(bar).to_have_attribute("aria-valuenow", "6")
    await expect(page.get_by_test_id("live-polite")).to_have_text(SUCCESS)  # said once, at the end
    finished = (await demo.api(TRANSFER, demo.token, id=gid))["transfer"]
    assert (finished["status"], finished["succeededPairs"]) == ("SUCCEEDED", 6)
    rows = main(page).get_by_role("table").get_by_role("row")
    await expect(rows).to_have_count(7)  # the header and the six pairs
    await expect(rows.filter(has_text="Succeeded")).to_have_count(6)
    assert (await console.check_outline())[:3] == [(1, "User Data Transfer"), (2, "Bulk transfer"), (3, "Transfer progress")]
    await assert_accessible(page, "a finished transfer's page")


async def test_cancel_asks_first_then_ends_the_transfer_cancelled(console: ConsolePage, demo: Demo, own_queue: str) -> None:
    source, target = fresh_users(2)
    gid = await demo.start_bulk([(source, target)])  # waits on the test's own queue, never served
    page = console.page
    await open_signed_in(console, demo, f"/console/transfers/{gid}")
    await expect(progress(page)).to_have_attribute("aria-valuemax", "1", timeout=PAGE_TIMEOUT_MS)

    await main(page).get_by_role("button", name="Cancel", exact=True).click()
    dialog = page.get_by_role("dialog", name="Stop this transfer?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel", exact=True).click()  # changed their mind
    await expect(dialog).to_be_hidden()
    assert (await demo.api(TRANSFER, demo.token, id=gid))["transfer"]["status"] == "QUEUED"

    await main(page).get_by_role("button", name="Cancel", exact=True).click()
    await dialog.get_by_role("button", name="Stop transfer").click()
    await expect(main(page).get_by_text("Status: Cancelled")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    await expect(main(page).get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    assert (await demo.api(TRANSFER, demo.token, id=gid))["transfer"]["status"] == "CANCELLED"


async def test_cancel_stops_a_running_transfer_after_the_pair_in_flight(
    console: ConsolePage, demo: Demo, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "BULK_LANES", 1)  # one pair after another
    users = fresh_users(8)
    gid = await demo.start_bulk(list(zip(users[::2], users[1::2])))
    page = console.page
    await open_signed_in(console, demo, f"/console/transfers/{gid}")
    await expect(progress(page)).to_have_attribute("aria-valuemax", "4", timeout=PAGE_TIMEOUT_MS)
    await workers.start(SLOW_PAIR_SECONDS="1.5", PAIR_GAP_SECONDS="1")  # each pair takes 1.5 s, then a pause
    await expect(main(page).get_by_text("Status: Running")).to_be_visible(timeout=RUN_MS)

    await main(page).get_by_role("button", name="Cancel", exact=True).click()
    await page.get_by_role("dialog", name="Stop this transfer?").get_by_role("button", name="Stop transfer").click()
    await expect(main(page).get_by_text("Status: Cancelled")).to_be_visible(timeout=RUN_MS)
    await expect(main(page).get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    ended = (await demo.api(TRANSFER, demo.token, id=gid))["transfer"]
    assert ended["status"] == "CANCELLED" and 0 < ended["succeededPairs"] < 4, ended
    await expect(main(page).get_by_text(re.compile(rf"^Transfer cancelled: {ended['succeededPairs']} of 4 pairs"))).to_be_visible()
    rows = main(page).get_by_role("table").get_by_role("row")
    await expect(rows.filter(has_text="Succeeded")).to_have_count(ended["succeededPairs"], timeout=PAGE_TIMEOUT_MS)
    await expect(rows.filter(has_text="Cancelled")).to_have_count(4 - ended["succeededPairs"])


async def test_a_failed_pair_is_listed_its_audit_log_downloads_and_retry_runs_only_it(
    console: ConsolePage, demo: Demo, workers: Workers
) -> None:
    users = fresh_users(6)
    pairs = list(zip(users[::2], users[1::2]))
    failing_source, failing_target = pairs[1]
    gid = await demo.start_bulk(pairs)
    await demo.set_tenant_admin(failing_target, True)  # after the start's checks: its pair fails
    try:
        await workers.start()
        page = console.page
        await open_signed_in(console, demo, f"/console/transfers/{gid}")
        await expect(main(page).get_by_text(ERRORS)).to_be_visible(timeout=RUN_MS)
        failed_ids = main(page).get_by_role("list", name="User IDs not transferred").get_by_role("listitem")
        await expect(failed_ids).to_have_text([str(failing_source), str(failing_target)])
        await expect(progress(page)).to_have_attribute("aria-valuenow", "3")
        await expect(main(page).get_by_role("row").filter(has_text="TENANT_ADMIN")).to_have_count(1)

        async with page.expect_download() as downloading:
            await main(page).get_by_role("link", name=AUDIT_LOG).click()
        download = await downloading.value
        log = list(csv.reader(io.StringIO(Path(await download.path()).read_text())))
        assert [(row[1], row[3], row[5], row[6]) for row in log[1:]] == [
            (str(failing_source), str(failing_target), "FAILED", "TENANT_ADMIN")
        ]
        assert await fits_a_phone(console)  # the errors, their IDs, the audit log's long link
    finally:
        await demo.set_tenant_admin(failing_target, False)

    await main(page).get_by_role("button", name="Retry failed pairs").click()
    dialog = page.get_by_role("dialog", name="Retry the failed pairs?")
    await dialog.get_by_role("button", name="Run Transfer").click()
    await expect(page).not_to_have_url(re.compile(re.escape(gid)), timeout=PAGE_TIMEOUT_MS)
    await expect(main(page).get_by_text(SUCCESS)).to_be_visible(timeout=RUN_MS)
    await expect(progress(page)).to_have_attribute("aria-valuemax", "1")
    retry_id = unquote(page.url.rsplit("/", 1)[-1])
    retried = (await demo.api(TRANSFER, demo.token, id=retry_id))["transfer"]
    assert (retried["kind"], retried["status"], retried["totalPairs"]) == ("BULK", "SUCCEEDED", 1)
    pair = retried["items"]["edges"][0]["node"]
    assert (pair["sourceUser"]["userId"], pair["targetUser"]["userId"]) == (failing_source, failing_target)


async def test_undo_shows_the_revert_plan_in_a_confirmation_and_reverts(console: ConsolePage, demo: Demo) -> None:
    source, target = fresh_users(2)
    gid = await demo.start_single(source, target)
    await demo.api.wait_finished(demo.token, gid)
    page = console.page
    await open_signed_in(console, demo, f"/console/transfers/{gid}")
    await expect(main(page).get_by_text(SUCCESS)).to_be_visible(timeout=PAGE_TIMEOUT_MS)

    undo = main(page).get_by_role("button", name="Undo", exact=True)
    await undo.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Undo this transfer?")
    await expect(dialog.get_by_role("columnheader", name="Returned")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    await expect(dialog.get_by_role("row")).not_to_have_count(1)  # a row per data type that moves back
    await assert_accessible(page, "a transfer's page with the undo dialog open")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(undo).to_be_focused()  # focus back where it was
    assert await fits_a_phone(console)
    assert (await demo.api(REVERT, demo.token, id=gid))["transfer"]["revertedBy"] is None

    await undo.click()
    await page.get_by_role("dialog", name="Undo this transfer?").get_by_role("button", name="Undo transfer").click()
    await expect(page).not_to_have_url(re.compile(re.escape(gid)), timeout=PAGE_TIMEOUT_MS)
    await expect(main(page).get_by_role("heading", name="Undo transfer", level=2)).to_be_visible()
    await expect(main(page).get_by_text(SUCCESS)).to_be_visible(timeout=RUN_MS)
    reverted = (await demo.api(REVERT, demo.token, id=gid))["transfer"]
    assert reverted["revertibleUntil"] is None
    assert (reverted["revertedBy"]["kind"], reverted["revertedBy"]["status"]) == ("REVERT", "SUCCEEDED")
    back = reverted["revertedBy"]["items"]["edges"][0]["node"]
    assert {back["sourceUser"]["userId"], back["targetUser"]["userId"]} == {source, target}


async def test_a_subscription_dropped_mid_transfer_resumes_from_its_last_cursor_and_ends_right(
    console: ConsolePage, demo: Demo, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "BULK_LANES", 1)
    users = fresh_users(8)
    gid = await demo.start_bulk(list(zip(users[::2], users[1::2])))
    page = console.page
    sockets: list[WebSocketRoute] = []
    subscribed: list[dict] = []  # the variables of every subscription the page opened
    received: list[list[str]] = []  # the cursors of the events each socket brought, in order

    def through(ws: WebSocketRoute) -> None:
        """The page's WebSockets pass through here to the API and back, and can be cut."""
        server = ws.connect_to_server()
        sockets.append(ws)
        cursors: list[str] = []
        received.append(cursors)

        def from_page(message: str | bytes) -> None:
            sent = json.loads(message)
            if sent.get("type") == "subscribe":
                subscribed.append(sent["payload"]["variables"])
            server.send(message)

        def from_server(message: str | bytes) -> None:
            answer = json.loads(message)
            if answer.get("type") == "next":
                cursors.append(answer["payload"]["data"]["transferEvents"]["cursor"])
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)

    await page.route_web_socket(re.compile(r"/graphql$"), through)
    await open_signed_in(console, demo, f"/console/transfers/{gid}")
    bar = progress(page)
    await expect(bar).to_have_attribute("aria-valuemax", "4", timeout=PAGE_TIMEOUT_MS)
    await workers.start(SLOW_PAIR_SECONDS="1.5")
    await expect(bar).to_have_attribute("aria-valuenow", re.compile("^[12]$"), timeout=RUN_MS)

    await sockets[0].close(code=1012, reason="the service restarts")  # the connection drops mid-transfer
    await expect(main(page).get_by_role("status").filter(has_text="reconnecting")).to_be_visible()
    await expect(main(page).get_by_text(SUCCESS)).to_be_visible(timeout=RUN_MS)
    await expect(bar).to_have_attribute("aria-valuenow", "4")
    await expect(page.get_by_test_id("live-polite")).to_have_text(SUCCESS)
    assert len(sockets) == 2 and subscribed[0]["after"] is None
    assert subscribed[1] == {"transferId": gid, "after": received[0][-1]}  # right after the last event seen
    assert not set(received[0]) & set(received[1])  # nothing twice
    finished = (await demo.api(TRANSFER, demo.token, id=gid))["transfer"]
    assert (finished["status"], finished["processedPairs"], finished["succeededPairs"]) == ("SUCCEEDED", 4, 4)
