"""The Single screen of the console, in a real browser, on the demo tenant: the seed's procedure
"Single user: Transfer data from one user to another" in its own words. The "Target User" and
"Source User" pickers search the API as you type (by name or User ID), "Show inactive users" adds
inactive users to both, the impact per data type and every rule the pair breaks show before
anything runs (the rule beside the picker it is about, "Run Transfer" disabled meanwhile), and
"Run Transfer" opens a confirmation whose own "Run Transfer" starts exactly one transfer and opens
its page; its "Cancel" starts nothing. Keyboard only, from start to end, and no serious or critical
axe-core violation with a list or the confirmation open.

Controls are found by role and accessible name only. The users are the demo tenant's, from
tests/console_demo.py: a test that runs a transfer takes fresh ones, the others untouched ones."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.async_api import Locator, Page, expect

from models.tenancy import User
from tests.accessibility import assert_accessible
from tests.console_demo import Demo, fresh_users, untouched_users
from tests.console_support import PAGE_TIMEOUT_MS, PHONE, ConsolePage, require_browser
from tests.support import Api

require_browser()

DEMO_TRANSFERS = """
query ($after: String) { transfers(kind: SINGLE, first: 100, after: $after) {
  edges { node { id status message items(first: 1) { edges { node { sourceUser { userId } targetUser { userId } } } } } }
  pageInfo { hasNextPage endCursor } } }"""
PLAN = """
query ($s: Int!, $t: Int!) { transferPlan(sourceUserId: $s, targetUserId: $t) {
  impact { dataType { name } moves deletes } errors { code } } }"""
TENANT_ADMIN = "A tenant administrator's data cannot be transferred, to or from them."
SAME_USER = "The source user and the target user are the same person: choose two different users."


async def name_of(user_id: int) -> str:
    user = await User.get(tenant__slug="demo", user_id=user_id)
    return f"{user.first_name} {user.last_name}"


async def demo_transfers(api: Api, token: str) -> dict[str, tuple[int, int]]:
    """Every single transfer of the demo tenant: its ID and its pair (source, target)."""
    found: dict[str, tuple[int, int]] = {}
    after = None
    while True:
        page = (await api(DEMO_TRANSFERS, token, after=after))["transfers"]
        for edge in page["edges"]:
            pair = edge["node"]["items"]["edges"][0]["node"]
            found[edge["node"]["id"]] = (pair["sourceUser"]["userId"], pair["targetUser"]["userId"])
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def option(page: Page, user_id: int) -> Locator:
    """The option of the user with this User ID (its name ends with it, or with ", inactive")."""
    return page.get_by_role("option", name=re.compile(rf"User ID {user_id}(, inactive)?$"))


async def open_single(console: ConsolePage, demo: Demo) -> Page:
    await console.open(f"/console/single#token={demo.token}")
    await console.expect_shell()
    return console.page


async def pick(page: Page, picker: str, search: str, user_id: int) -> None:
    """Type `search` into the picker and choose the user with `user_id` from its list."""
    box = page.get_by_role("combobox", name=picker)
    await box.fill(search)
    await option(page, user_id).click()
    await expect(box).to_have_value(re.compile(rf"\({user_id}\)"))


def run_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Run Transfer", exact=True).first


async def test_a_single_transfer_runs_after_its_confirmation_and_opens_its_page(
    console: ConsolePage, api: Api, demo: Demo
) -> None:
    page = await open_single(console, demo)
    before = await demo_transfers(api, demo.token)
    target_id, source_id = fresh_users(2)
    target, source = await name_of(target_id), await name_of(source_id)
    await pick(page, "Target User", target, target_id)
    await pick(page, "Source User", source, source_id)
    await expect(page.get_by_role("table", name="Records moved and deleted per data type")).to_be_visible()
    await run_button(page).click()
    dialog = page.get_by_role("dialog", name="Transfer user data")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(f"from {source} ({source_id}) to {target} ({target_id})")
    await dialog.get_by_role("button", name="Run Transfer").dblclick()  # a double click starts one
    await expect(page).to_have_url(re.compile(r"/console/transfers/[^/]+$"), timeout=PAGE_TIMEOUT_MS)
    started = {k: v for k, v in (await demo_transfers(api, demo.token)).items() if k not in before}
    assert list(started.values()) == [(source_id, target_id)]
    (transfer_id,) = started
    assert page.url == f"{console.base}/console/transfers/{quote(transfer_id, safe='')}"
    await expect(page.get_by_role("main").get_by_text("Data Transfer Successful")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    finished = await api.wait_finished(demo.token, transfer_id)
    assert (finished["status"], finished["message"]) == ("SUCCEEDED", "Data Transfer Successful")


async def test_the_picker_finds_a_user_by_name_and_by_user_id_as_you_type(console: ConsolePage, demo: Demo) -> None:
    page = await open_single(console, demo)
    box = page.get_by_role("combobox", name="Target User")
    await box.press_sequentially("smi")  # as typed: the search waits for a pause, then asks
    await expect(page.get_by_role("option", name="John Smith, john.smith.19, User ID 19")).to_be_visible()
    await expect(box).to_have_attribute("aria-expanded", "true")
    (user_id,) = untouched_users(1)
    await box.fill("")
    await box.press_sequentially(str(user_id))
    await expect(option(page, user_id)).to_be_visible()
    await expect(page.get_by_role("option")).to_have_count(1)


async def test_show_inactive_users_brings_inactive_users_into_both_lists(console: ConsolePage, demo: Demo) -> None:
    page = await open_single(console, demo)
    for picker in ("Target User", "Source User"):
        await page.get_by_role("checkbox", name="Show inactive users").set_checked(False)
        box = page.get_by_role("combobox", name=picker)
        await box.fill("147")  # every tenth demo user from the seventh on is inactive
        await expect(page.get_by_text("No user matches “147”.")).to_be_visible()
        await expect(option(page, 147)).to_have_count(0)
        await page.get_by_role("checkbox", name="Show inactive users").check()
        await box.fill("")
        await box.fill("147")
        await expect(option(page, 147)).to_be_visible()
        await expect(option(page, 147)).to_have_accessible_name(re.compile("inactive$"))
        await box.press("Escape")


async def test_the_impact_per_data_type_shows_before_anything_runs(console: ConsolePage, api: Api, demo: Demo) -> None:
    page = await open_single(console, demo)
    before = await demo_transfers(api, demo.token)
    target, source = untouched_users(2)
    await pick(page, "Target User", str(target), target)
    await pick(page, "Source User", str(source), source)
    plan = (await api(PLAN, demo.token, s=source, t=target))["transferPlan"]
    assert plan["errors"] == []
    table = page.get_by_role("table", name="Records moved and deleted per data type")
    await expect(table).to_be_visible()
    changed = [row for row in plan["impact"] if row["moves"] or row["deletes"]]
    assert changed
    for row in changed:
        data_type = re.escape(row["dataType"]["name"]).replace("/", r"\/")  # Playwright reads a regex's / as its end
        cells = rf"{data_type} (Quality Management|Classic WFM) · (Combine|Overwrite)"
        name = re.compile(rf"^{cells} {row['moves']:,} {row['deletes']:,}$")
        await expect(table.get_by_role("row", name=name)).to_have_count(1)
    await expect(table.get_by_role("row")).to_have_count(len(changed) + 1)  # and its header
    await expect(run_button(page)).to_be_enabled()
    await expect(page.get_by_text(re.compile(r"^Ready to run\. [\d,]+ records? move from"))).to_be_attached()  # announced
    assert await demo_transfers(api, demo.token) == before


async def test_a_tenant_admin_is_refused_beside_the_picker_and_run_transfer_stays_disabled(
    console: ConsolePage, demo: Demo
) -> None:
    page = await open_single(console, demo)
    (source,) = untouched_users(1)
    await pick(page, "Target User", "2", 2)  # demo users 1 to 3 are tenant admins
    await pick(page, "Source User", str(source), source)
    target = page.get_by_role("combobox", name="Target User")
    await expect(target).to_have_accessible_description(re.compile(re.escape(TENANT_ADMIN)))
    await expect(target).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("combobox", name="Source User")).not_to_have_accessible_description(
        re.compile(re.escape(TENANT_ADMIN))
    )
    await expect(run_button(page)).to_be_disabled()


async def test_the_same_user_twice_is_refused_beside_both_pickers(console: ConsolePage, demo: Demo) -> None:
    page = await open_single(console, demo)
    (user_id,) = untouched_users(1)
    await pick(page, "Target User", str(user_id), user_id)
    await pick(page, "Source User", str(user_id), user_id)
    for picker in ("Target User", "Source User"):
        await expect(page.get_by_role("combobox", name=picker)).to_have_accessible_description(
            re.compile(re.escape(SAME_USER))
        )
    await expect(page.get_by_role("table", name="Records moved and deleted per data type")).to_have_count(0)
    await expect(run_button(page)).to_be_disabled()


async def test_cancel_in_the_confirmation_starts_nothing(console: ConsolePage, api: Api, demo: Demo) -> None:
    page = await open_single(console, demo)
    before = await demo_transfers(api, demo.token)
    target, source = untouched_users(2)
    await pick(page, "Target User", str(target), target)
    await pick(page, "Source User", str(source), source)
    await run_button(page).click()
    dialog = page.get_by_role("dialog", name="Transfer user data")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(run_button(page)).to_be_focused()  # back where the person was
    assert page.url.endswith("/console/single")
    assert await demo_transfers(api, demo.token) == before


async def tab_to(page: Page, target: Locator, most: int = 40) -> None:
    """Press Tab until `target` has the focus."""
    for _ in range(most):
        if await target.evaluate("element => element === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the focus by Tab")


async def test_a_whole_single_transfer_by_keyboard_alone(console: ConsolePage, api: Api, demo: Demo) -> None:
    page = console.page
    await console.open("/console/single")
    keys = page.keyboard
    await tab_to(page, page.get_by_label("API token"))
    await keys.type(demo.token)
    await keys.press("Enter")
    await console.expect_shell()
    before = await demo_transfers(api, demo.token)
    target, source = fresh_users(2)
    for picker, user_id in (("Target User", target), ("Source User", source)):
        box = page.get_by_role("combobox", name=picker)
        await tab_to(page, box)
        await keys.type(str(user_id))
        await expect(option(page, user_id)).to_be_visible()
        await keys.press("ArrowDown")
        await expect(option(page, user_id)).to_have_attribute("aria-selected", "true")
        await keys.press("Enter")
        await expect(box).to_have_value(re.compile(rf"\({user_id}\)"))
    await expect(run_button(page)).to_be_enabled()
    await tab_to(page, run_button(page))
    await keys.press("Enter")
    dialog = page.get_by_role("dialog", name="Transfer user data")
    await expect(dialog).to_be_visible()
    await tab_to(page, dialog.get_by_role("button", name="Run Transfer"))
    await keys.press("Space")
    await expect(page).to_have_url(re.compile(r"/console/transfers/[^/]+$"), timeout=PAGE_TIMEOUT_MS)
    await expect(page.get_by_role("main").get_by_role("heading", level=2)).to_be_focused()  # the new page's title
    started = {k: v for k, v in (await demo_transfers(api, demo.token)).items() if k not in before}
    assert list(started.values()) == [(source, target)]
    await expect(page.get_by_role("main").get_by_text("Data Transfer Successful")).to_be_visible(timeout=PAGE_TIMEOUT_MS)


async def test_no_serious_accessibility_violation_with_a_list_or_the_confirmation_open(
    console: ConsolePage, demo: Demo
) -> None:
    page = await open_single(console, demo)
    await page.get_by_role("combobox", name="Target User").fill("an")
    await expect(page.get_by_role("listbox", name="Target User")).to_be_visible()
    await assert_accessible(page, "Single, Target User list open")
    target, source = untouched_users(2)
    await pick(page, "Target User", str(target), target)
    await page.get_by_role("checkbox", name="Show inactive users").check()
    await page.get_by_role("combobox", name="Source User").fill(str(source)[:2])  # ...7 among them is inactive
    await expect(page.get_by_role("listbox", name="Source User")).to_be_visible()
    await assert_accessible(page, "Single, Source User list open, inactive users shown")
    await option(page, source).click()
    await page.get_by_role("radio", name="Only the data types I choose").check()
    await expect(page.get_by_role("table", name="Records moved and deleted per data type")).to_be_visible()
    await assert_accessible(page, "Single, impact shown, data types listed")
    await run_button(page).click()
    await expect(page.get_by_role("dialog", name="Transfer user data")).to_be_visible()
    await assert_accessible(page, "Single, confirmation open")


@pytest.mark.parametrize("width", [PHONE["width"], 640], ids=["390 px", "200 % zoom"])
async def test_the_screen_fits_a_narrow_window_without_scrolling_sideways(
    console: ConsolePage, demo: Demo, width: int
) -> None:
    await console.page.set_viewport_size({"width": width, "height": 844})  # 640: a 1,280 px screen at 200 %
    page = await open_single(console, demo)
    target, source = untouched_users(2)
    await pick(page, "Target User", str(target), target)
    await page.get_by_role("combobox", name="Source User").fill(str(source))
    await expect(option(page, source)).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await option(page, source).click()
    await expect(page.get_by_role("table", name="Records moved and deleted per data type")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
