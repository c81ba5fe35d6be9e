"""What the console's browser tests share: headless Chromium (Debian's `chromium`, driven by
Playwright; never a browser Playwright downloads), a fresh browser profile per test on the page,
and what that page did: every origin it reached for, what it threw, what the Content-Security-Policy
refused, and its storage.

A test module calls `require_browser()` at import: without /usr/bin/chromium it is skipped,
saying so, except where UDT_REQUIRE_BROWSER=1 (CI, which installs it) makes that a failure.
Its fixtures (`browser`, `console`) are everywhere: tests/conftest.py loads this module as a plugin.
Controls are found by role and accessible name only, as a person finds them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Route, async_playwright, expect

from tests.support import Api

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("UDT_REQUIRE_BROWSER") == "1"
# Headless as root, and none of Chromium's own calls home (a closed network refuses them).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_MS = 30_000  # a loaded 2-core machine is slow to start a browser profile
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def require_browser() -> None:
    """Skip the calling test module when there is no browser, unless one is required."""
    if not CHROMIUM.exists() and not REQUIRED:
        pytest.skip(
            f"no browser here: {CHROMIUM} is missing (apt-get install chromium); CI installs it and never skips this",
            allow_module_level=True,
        )


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), f"UDT_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: apt-get install -y chromium"
    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield found
        await found.close()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


class ConsolePage:
    """One fresh browser profile on the console of the API at `base`. The page may reach the API
    and the origins in `allowed` (an identity provider); anything else is refused, as an air-gapped
    network would, and recorded."""

    def __init__(self, page: Page, base: str, allowed: tuple[str, ...] = ()) -> None:
        self.page = page
        self.base = base
        self.allowed = {base, *allowed}
        self.urls: list[str] = []  # what the console asked for (not the provider's own pages)
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.refused_by_policy: list[str] = []
        page.on("request", lambda request: self._asked(request.url, self._from_console(request)))
        page.on("websocket", lambda ws: self.urls.append(ws.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._on_console)

    def _on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text and self.page.url.startswith(self.base):
            self.refused_by_policy.append(message.text)

    def _from_console(self, request: Request) -> bool:
        """Whether the console asked for it (an identity provider's own pages load what they like)."""
        try:
            return origin_of(request.frame.url) == self.base or request.is_navigation_request()
        except Exception:  # a request of no frame (a worker): not the console's
            return False

    def _asked(self, url: str, by_console: bool) -> None:
        if by_console:
            self.urls.append(url)

    async def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or origin_of(url) in self.allowed:
            await route.continue_()
        else:
            if self._from_console(route.request):
                self.foreign.append(url)
            await route.abort("internetdisconnected")

    async def start(self) -> None:
        await self.page.context.route("**/*", self._route)

    async def open(self, path: str = "/console") -> None:
        await self.page.goto(f"{self.base}{path}")

    async def sign_in_with_token(self, token: str) -> None:
        await self.page.get_by_label("API token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()

    async def expect_shell(self) -> None:
        """Signed in: the choice of Single and Bulk, History, and Sign out are there."""
        await expect(self.page.get_by_role("radio", name="Single", exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        await expect(self.page.get_by_role("radio", name="Bulk", exact=True)).to_be_visible()
        await expect(self.page.get_by_role("link", name="History", exact=True)).to_be_visible()
        await expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    async def expect_signed_out(self) -> None:
        await expect(self.page.get_by_role("button", name="Sign in")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        await expect(self.page.get_by_role("radio", name="Single", exact=True)).to_have_count(0)

    async def outline(self) -> list[tuple[int, str]]:
        """The page's visible headings in order: (level, text)."""
        return [
            (int(h[0]), h[1])
            for h in await self.page.evaluate(
                """[...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
                     .filter((h) => h.checkVisibility())
                     .map((h) => [h.tagName.slice(1), h.textContent.trim()])"""
            )
        ]

    async def check_outline(self) -> list[tuple[int, str]]:
        """One h1 first, and no heading more than one level below the one before it (no h2 then h4)."""
        found = await self.outline()
        levels = [level for level, _ in found]
        assert levels[:1] == [1] and levels.count(1) == 1, found
        assert all(after <= before + 1 for before, after in zip(levels, levels[1:])), found
        return found

    async def local_storage(self) -> dict[str, str]:
        return await self.page.evaluate("Object.fromEntries(Object.entries(localStorage))")

    async def session_storage(self) -> dict[str, str]:
        return await self.page.evaluate("Object.fromEntries(Object.entries(sessionStorage))")

    async def cookies(self) -> list[dict]:
        return list(await self.page.context.cookies())

    def other_origins(self) -> list[str]:
        reached = [url for url in self.urls if not url.startswith("data:") and origin_of(url) not in self.allowed]
        return self.foreign + reached

    def check_clean(self) -> None:
        """Nothing thrown, nothing refused by the policy, no other origin reached."""
        assert self.errors == [], f"the page threw: {self.errors}"
        assert self.refused_by_policy == [], f"the Content-Security-Policy refused: {self.refused_by_policy}"
        assert self.other_origins() == [], f"the page reached for other origins: {self.other_origins()}"


@pytest.fixture
async def console(browser: Browser, api: Api) -> AsyncIterator[ConsolePage]:
    """The console of the session's API, in a fresh browser profile, not yet opened; checked clean after the test."""
    context = await browser.new_context(viewport=WIDE)
    try:
        found = ConsolePage(await context.new_page(), api.base)
        await found.start()
        yield found
        found.check_clean()
    finally:
        await context.close()
