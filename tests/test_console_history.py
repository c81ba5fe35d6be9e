"""History in the console, in a real browser, on the demo tenant: every transfer, newest first,
each linking to its page, filtered by a select labelled "Status" that stays in the address."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from playwright.async_api import Locator, expect

from tests.accessibility import assert_accessible
from tests.console_demo import Demo, fits_a_phone, fresh_users, open_signed_in
from tests.console_support import PAGE_TIMEOUT_MS, ConsolePage, require_browser

require_browser()

CANCEL = "mutation ($id: ID!) { cancelTransfer(id: $id) { userErrors { code } } }"


async def linked_transfers(table: Locator) -> list[str]:
    """The transfer IDs the table's rows link to, top to bottom."""
    hrefs = await table.get_by_role("link").evaluate_all("links => links.map(a => a.pathname)")
    return [unquote(href.rsplit("/", 1)[-1]) for href in hrefs]


async def test_history_lists_transfers_newest_first_and_filters_them_by_status(
    console: ConsolePage, demo: Demo, own_queue: str
) -> None:
    users = fresh_users(6)
    first = await demo.start_single(users[0], users[1])  # waits on the test's own queue
    cancelled = await demo.start_single(users[2], users[3])
    assert (await demo.api(CANCEL, demo.token, id=cancelled))["cancelTransfer"]["userErrors"] == []
    last = await demo.start_single(users[4], users[5])
    page = console.page
    await open_signed_in(console, demo, "/console/history")
    table = page.get_by_role("main").get_by_role("table", name="Transfers, newest first")
    await expect(table.get_by_role("link").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    assert (await linked_transfers(table))[:3] == [last, cancelled, first]
    await assert_accessible(page, "History")

    status = page.get_by_role("combobox", name="Status")
    await status.focus()
    await status.select_option(label="Cancelled")
    await expect(page).to_have_url(f"{console.base}/console/history?status=CANCELLED")
    await expect(table.get_by_role("link").first).to_have_attribute("href", f"/console/transfers/{quote(cancelled, safe='')}")
    rows = table.get_by_role("row")
    count = await rows.count()
    await expect(rows.filter(has_text="Cancelled")).to_have_count(count - 1)  # every row but the header
    await expect(status).to_be_focused()  # the list changed under it, not the page

    await page.reload()  # the filter is in the address
    await expect(page.get_by_role("combobox", name="Status")).to_have_value("CANCELLED", timeout=PAGE_TIMEOUT_MS)
    await table.get_by_role("link").first.click()
    await expect(page).to_have_url(f"{console.base}/console/transfers/{quote(cancelled, safe='')}")
    await expect(page.get_by_role("main").get_by_text("Status: Cancelled")).to_be_visible()
    await page.go_back()
    await expect(table.get_by_role("link").first).to_be_visible()
    assert await fits_a_phone(console)


async def test_previous_and_next_page_walk_a_history_longer_than_a_page(
    console: ConsolePage, demo: Demo, own_queue: str
) -> None:
    source, target = fresh_users(2)
    ours = []  # 27 cancelled transfers of one pair (a pair is free again once its transfer ends), oldest first
    for _ in range(27):
        ours.append(await demo.start_single(source, target))
        assert (await demo.api(CANCEL, demo.token, id=ours[-1]))["cancelTransfer"]["userErrors"] == []
    page = console.page
    await open_signed_in(console, demo, "/console/history")
    table = page.get_by_role("main").get_by_role("table", name="Transfers, newest first")
    await expect(table.get_by_role("link")).to_have_count(25, timeout=PAGE_TIMEOUT_MS)  # a page
    assert await linked_transfers(table) == ours[::-1][:25]
    previous_page, next_page = (page.get_by_role("button", name=name) for name in ("Previous page", "Next page"))
    await expect(previous_page).to_be_disabled()
    summary = page.get_by_text(re.compile(r"^Transfers \d+ to \d+ of \d+$"))
    await expect(summary).to_have_text(re.compile(r"^Transfers 1 to 25 of "))

    await next_page.focus()
    await page.keyboard.press("Enter")
    await expect(table.get_by_role("link").first).to_have_attribute("href", f"/console/transfers/{quote(ours[1], safe='')}")
    await expect(summary).to_have_text(re.compile(r"^Transfers 26 to "))
    assert (await linked_transfers(table))[:2] == [ours[1], ours[0]]
    await expect(previous_page).to_be_enabled()
    await previous_page.click()
    await expect(table.get_by_role("link").first).to_have_attribute("href", f"/console/transfers/{quote(ours[-1], safe='')}")
    await expect(summary).to_have_text(re.compile(r"^Transfers 1 to 25 of "))
    assert await linked_transfers(table) == ours[::-1][:25]
