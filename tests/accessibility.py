"""axe-core run in a page of the console: no serious or critical violation on any screen.

axe-core comes bundled in axe-playwright-python (no Node at test time); it is evaluated in the
page through the browser's debugging protocol, which the console's Content-Security-Policy
does not govern, so the page is checked exactly as it is served.
"""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

BLOCKING = {"serious", "critical"}
# WCAG 2.1 A and AA, plus axe's best practices (landmarks, one main heading, ...)
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


async def violations(page: Page) -> list[str]:
    """Every serious or critical violation on the page as it is now, one line each."""
    results = await Axe().run(page, options={"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]})
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]


async def assert_accessible(page: Page, screen: str) -> None:
    """Fails with every serious or critical violation axe-core finds on `screen`."""
    found = await violations(page)
    assert not found, f"axe-core on {screen}:\n" + "\n".join(found)
