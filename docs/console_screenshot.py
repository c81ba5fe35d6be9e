"""The README's picture of the console: `udt dev` (fresh demo data), its sign-in link opened in
headless Chromium, and the seed's worked example on the Bulk screen: the people file downloaded
from its link, 19 written as the To User ID of Jenny Andrews (21) and 20 as that of Sam Rodgers
(22), uploaded, and its preview.

    .venv/bin/python docs/console_screenshot.py   # writes docs/console.png
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.console_first_screen import start_dev  # noqa: E402
from tests.console_support import CHROMIUM, FLAGS  # noqa: E402
from tests.support import free_port  # noqa: E402

PICTURE = ROOT / "docs" / "console.png"


async def take(link: str, folder: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = await browser.new_page(viewport={"width": 1100, "height": 800}, accept_downloads=True)
        await page.goto(link)
        await page.get_by_role("radio", name="Bulk", exact=True).check()
        await page.get_by_role("button", name="Run a new bulk data transfer").click()
        async with page.expect_download() as downloading:
            await page.get_by_role("link", name="Click here to download an export of all users.").click()
        rows = list(csv.reader(io.StringIO(Path(await (await downloading.value).path()).read_text(encoding="utf-8-sig"))))
        for row in rows[1:]:
            row[1] = {"21": "19", "22": "20"}.get(row[0], row[1])
        edited = folder / "people.csv"
        with edited.open("w", newline="") as file:
            csv.writer(file).writerows(rows)
        async with page.expect_file_chooser() as chooser:
            await page.get_by_role("button", name="Upload User Data Transfer File").click()
        await (await chooser.value).set_files(edited)
        await expect(page.get_by_role("table", name="Rows of people.csv")).to_be_visible()
        await page.mouse.move(0, 0)
        await page.evaluate("document.activeElement?.blur()")
        await page.screenshot(path=PICTURE, full_page=True)
        await browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="udt-screenshot-") as data_dir:
        dev, link = start_dev(free_port(), Path(data_dir))
        try:
            asyncio.run(take(link, Path(data_dir)))
        finally:
            dev.terminate()
            dev.wait(timeout=30)
    print(f"wrote {PICTURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
