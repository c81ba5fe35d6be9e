"""The console's Bulk screen in a real browser, as the seed's procedures run it: the people file
downloaded from its link, edited, uploaded with "Upload User Data Transfer File", previewed page
by page with every error at its line, run with the confirmation, and shown again while it runs
after the page is reloaded or opened anew. Controls are found by role and accessible name only.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.async_api import Locator, Page, expect

from models import settings
from models.counts import owned_counts
from models.tenancy import User
from tests.accessibility import assert_accessible
from tests.console_demo import WORKED_EXAMPLE, Demo, untouched_users
from tests.console_support import PAGE_TIMEOUT_MS, PHONE, ConsolePage, require_browser
from tests.processes import Workers, until, worker_env
from tests.support import Api, World

require_browser()

CANCEL = "mutation ($id: ID!) { cancelTransfer(id: $id) { userErrors { code } } }"


async def demo_counts(*user_ids: int) -> dict[int, dict[str, int]]:
    users = {u.user_id: u.id for u in await User.filter(tenant__slug="demo", user_id__in=list(user_ids))}
    counts = await owned_counts(list(users.values()))
    return {user_id: counts[pk] for user_id, pk in users.items()}


def people_file(path: Path, filled: dict[int, object], extra: str = "") -> Path:
    """A people file in the export's form: one row per From user; `filled` maps a row's From
    User ID to what its To User ID cell says."""
    rows = [["From User ID", "To User ID", "First Name", "Last Name"]]
    rows += [[str(uid), str(to), f"First{uid}", f"Last{uid}"] for uid, to in filled.items()]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_text(buffer.getvalue() + extra)
    return path


async def signed_in_on_bulk(console: ConsolePage, token: str) -> Page:
    """Bulk, signed in by typing the token in, as a person with a token at hand does."""
    await console.open("/console/bulk")
    await console.sign_in_with_token(token)
    await console.expect_shell()
    return console.page


async def open_new_transfer(page: Page) -> None:
    await page.get_by_role("button", name="Run a new bulk data transfer").click()
    await expect(page.get_by_role("button", name="Upload User Data Transfer File")).to_be_visible()


async def upload(page: Page, path: Path, keyboard: bool = False) -> Locator:
    """Choose `path` in the file explorer "Upload User Data Transfer File" opens (clicked, or
    with the keyboard); the preview's table."""
    button = page.get_by_role("button", name="Upload User Data Transfer File")
    async with page.expect_file_chooser() as chooser:
        if keyboard:
            await button.focus()
            await page.keyboard.press("Enter")
        else:
            await button.click()
    await (await chooser.value).set_files(path)
    table = page.get_by_role("table", name=f"Rows of {path.name}")
    await expect(table).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    return table


def row_at(table: Locator, line: int) -> Locator:
    """The preview's row of the file's line `line` (its row header)."""
    return table.get_by_role("row").filter(has=table.page.get_by_role("rowheader", name=str(line), exact=True))


async def expect_lines(table: Locator, lines: list[int]) -> None:
    """The preview shows the rows of exactly these lines of the file, in this order."""
    await expect(table.get_by_role("rowheader")).to_have_text([str(line) for line in lines])


async def test_the_seeds_worked_example_downloads_the_people_file_and_moves_both_pairs(
    console: ConsolePage, demo: Demo, api: Api, tmp_path: Path
) -> None:
    page = await signed_in_on_bulk(console, demo.token)
    before = await demo_counts(19, 20, 21, 22)
    assert before[19] and before[20], "the demo's John Smith and James Anderson own data as seeded"
    await open_new_transfer(page)
    await assert_accessible(page, "the Bulk screen's upload step")

    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Click here to download an export of all users.").click()
    download = await downloading.value
    assert download.suggested_filename == "people.csv"
    rows = list(csv.reader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][:2] == ["From User ID", "To User ID"]
    lines = {}
    for line, row in enumerate(rows[1:], start=2):  # the header is line 1
        if int(row[0]) in WORKED_EXAMPLE:
            row[1] = str(WORKED_EXAMPLE[int(row[0])])
            lines[int(row[0])] = line
    assert set(lines) == {21, 22}
    edited = tmp_path / "people.csv"
    with edited.open("w", newline="") as file:
        csv.writer(file).writerows(rows)

    table = await upload(page, edited)
    # Jenny Andrews' From User ID 21 and To User ID 19, Sam Rodgers' 22 and 20, as the seed checks them.
    await expect(row_at(table, lines[21]).get_by_role("cell")).to_have_text(
        ["21", "19", "John Smith (19)", "Jenny Andrews (21)", "None"]
    )
    await expect(row_at(table, lines[22]).get_by_role("cell")).to_have_text(
        ["22", "20", "James Anderson (20)", "Sam Rodgers (22)", "None"]
    )
    await expect_lines(table, [lines[21], lines[22]])
    await assert_accessible(page, "the Bulk screen's preview")

    await page.get_by_role("button", name="Run Transfer").click()
    dialog = page.get_by_role("dialog", name="Run the bulk data transfer?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Run Transfer").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("heading", name="Your bulk data transfer")).to_be_focused()
    await expect(page.get_by_role("main").get_by_text("Data Transfer Successful")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    # The transfer shown within Bulk's own section: its title an h3 there, its parts h4.
    outline = await console.check_outline()
    assert outline[:4] == [
        (1, "User Data Transfer"),
        (2, "Perform multiple data transfers at one time via a CSV upload"),
        (3, "Your bulk data transfer"),
        (4, "Transfer progress"),
    ]
    transfer_id = page.url.split("?transfer=")[1]
    done = await api.wait_finished(demo.token, unquote(transfer_id))
    assert (done["status"], done["kind"], done["totalPairs"]) == ("SUCCEEDED", "BULK", 2)
    after = await demo_counts(19, 20, 21, 22)
    assert after[19] == {} and after[20] == {}
    for source, target in ((19, 21), (20, 22)):
        assert sum(after[target].values()) > sum(before[target].values())


async def test_a_file_with_errors_shows_each_at_its_line_and_runs_only_once_fixed_and_uploaded_again(
    console: ConsolePage, demo: Demo, tmp_path: Path
) -> None:
    page = await signed_in_on_bulk(console, demo.token)
    await open_new_transfer(page)
    # Line 2: Jenny gets John's data; line 3: Sam's cell is no User ID; line 4: no such user.
    broken = people_file(tmp_path / "people.csv", {21: 19, 22: "20x", 23: 99999})
    table = await upload(page, broken)

    await expect(row_at(table, 2).get_by_role("cell").last).to_have_text("None")
    await expect(row_at(table, 3).get_by_role("cell").last).to_have_text(
        "This is not a User ID: a User ID is a whole number above zero."
    )
    await expect(row_at(table, 4).get_by_role("cell").last).to_have_text("There is no user with this User ID.")
    run = page.get_by_role("button", name="Run Transfer")
    await expect(run).to_be_disabled()
    await expect(run).to_have_accessible_description("Run Transfer is available once the file has no errors.")
    await assert_accessible(page, "the Bulk screen's preview with errors")
    await run.click(force=True)
    await expect(page.get_by_role("dialog")).to_have_count(0)

    fixed = people_file(tmp_path / "people.csv", {21: 19, 22: 20})
    table = await upload(page, fixed, keyboard=True)
    await expect_lines(table, [2, 3])
    await expect(row_at(table, 3).get_by_role("cell")).to_have_text(
        ["22", "20", "James Anderson (20)", "Sam Rodgers (22)", "None"]
    )
    await expect(page.get_by_role("button", name="Run Transfer")).to_be_enabled()


async def test_rows_per_page_and_previous_and_next_page_walk_a_long_preview(
    console: ConsolePage, demo: Demo, tmp_path: Path
) -> None:
    page = await signed_in_on_bulk(console, demo.token)
    await open_new_transfer(page)
    # 30 pairs of demo agents (lines 2 to 31), each From user receiving the data of another.
    users = untouched_users(60)
    table = await upload(page, people_file(tmp_path / "pairs.csv", dict(zip(users[:30], users[30:]))))
    next_page = page.get_by_role("button", name="Next page")
    previous_page = page.get_by_role("button", name="Previous page")

    await expect_lines(table, list(range(2, 12)))
    await expect(page.get_by_text("Rows 1 to 10 of 30", exact=True)).to_be_visible()
    await expect(previous_page).to_be_disabled()
    await next_page.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Rows 11 to 20 of 30", exact=True)).to_be_visible()
    await expect_lines(table, list(range(12, 22)))
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Rows 21 to 30 of 30", exact=True)).to_be_visible()
    await expect_lines(table, list(range(22, 32)))
    await expect(next_page).to_be_disabled()
    await expect(next_page).to_be_focused()  # the last page keeps the focus where it was
    await previous_page.click()
    await expect(page.get_by_text("Rows 11 to 20 of 30", exact=True)).to_be_visible()
    await expect_lines(table, list(range(12, 22)))

    await page.get_by_label("Rows per page").select_option("25")
    await expect(page.get_by_text("Rows 1 to 25 of 30", exact=True)).to_be_visible()
    await expect_lines(table, list(range(2, 27)))
    await page.get_by_label("Rows per page").select_option("50")
    await expect(page.get_by_text("Rows 1 to 30 of 30", exact=True)).to_be_visible()
    await expect(next_page).to_be_disabled()
    await expect(page.get_by_role("button", name="Run Transfer")).to_be_enabled()


@pytest.mark.parametrize("viewport", [PHONE, {"width": 640, "height": 450}], ids=["390px", "200%-zoom"])
async def test_the_preview_fits_a_narrow_screen_its_table_scrolling_in_its_own_region(
    console: ConsolePage, demo: Demo, tmp_path: Path, viewport: dict[str, int]
) -> None:
    page = await signed_in_on_bulk(console, demo.token)
    await page.set_viewport_size(viewport)
    await open_new_transfer(page)
    await upload(page, people_file(tmp_path / "people.csv", {21: 19, 22: "20x"}))
    page_width = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert page_width <= 0, "the page itself never scrolls sideways"
    region = page.get_by_role("region", name="Rows of people.csv")
    await expect(region).to_be_visible()
    for name in ("Run a new bulk data transfer", "Upload User Data Transfer File", "Next page", "Run Transfer"):
        box = await page.get_by_role("button", name=name).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], name


async def test_a_running_bulk_transfer_is_shown_again_after_a_reload_and_in_a_new_tab(
    console: ConsolePage, world: World, api: Api, database: str, redis_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pairs take 3 s each in a worker of the test's own queue: the transfer runs for 18 s.
    queue = f"udt:test-console-bulk:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    workers = Workers(worker_env(database, redis_url, queue, SLOW_PAIR_SECONDS="3"), tmp_path / "pairs")
    await world.stock(*range(10, 17))
    first = tmp_path / "pairs.csv"
    first.write_text("Source User ID,Target User ID\n" + "".join(f"{s},{s + 10}\n" for s in range(10, 16)))
    page = await signed_in_on_bulk(console, world.admin)
    await open_new_transfer(page)
    await upload(page, first)
    await page.get_by_role("button", name="Run Transfer").click()
    await page.get_by_role("dialog").get_by_role("button", name="Run Transfer").click()
    await expect(page.get_by_role("heading", name="Your bulk data transfer")).to_be_visible()
    transfer_id = unquote(page.url.split("?transfer=")[1])
    try:
        # Only one bulk transfer at a time: a second one is refused, and the reason is read with the button.
        await open_new_transfer(page)
        second = tmp_path / "other.csv"
        second.write_text("Source User ID,Target User ID\n16,26\n")
        await upload(page, second)
        await page.get_by_role("button", name="Run Transfer").click()
        await page.get_by_role("dialog").get_by_role("button", name="Run Transfer").click()
        await expect(page.get_by_role("dialog")).to_have_count(0)
        await expect(page.get_by_role("button", name="Run Transfer")).to_have_accessible_description(
            "A bulk data transfer is already running. Wait until it has finished."
        )

        await workers.start()
        await until(lambda: workers.pairs_begun() >= 1, 60)
        await page.reload()
        in_progress = "The bulk data transfer in progress"
        await expect(page.get_by_role("heading", name=in_progress)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        # The page closed, and Bulk opened again in a new tab, signed in afresh.
        await page.close()
        again = ConsolePage(await console.page.context.new_page(), console.base)
        reopened = await signed_in_on_bulk(again, world.admin)
        await expect(reopened.get_by_role("heading", name=in_progress)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        again.check_clean()
        running = (await api("{ activeBulkTransfer { id status } }", world.admin))["activeBulkTransfer"]
        assert running and running["id"] == transfer_id and running["status"] in ("QUEUED", "RUNNING")
    finally:
        # The slow worker goes first (on SQLite it holds the only write lock for seconds at a time);
        # the transfer is cancelled, and a quick worker takes up its lane and ends it.
        await workers.stop_all()
        await api(CANCEL, world.admin, id=transfer_id)
        await workers.start(SLOW_PAIR_SECONDS="0")
        await api.wait_finished(world.admin, transfer_id)
        await workers.stop_all()
