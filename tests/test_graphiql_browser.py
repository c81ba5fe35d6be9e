"""GraphiQL in a real browser, with no internet: the page, its scripts and every call come from the service.

Headless Chromium (Debian's `chromium` package, driven by Playwright; never a browser Playwright
downloads) opens /graphql of the running app, a token is pasted into the Headers tab, and a query
and a subscription are run from the page. Anything the page asks of another origin is refused,
as an air-gapped network would, and fails the test. Without /usr/bin/chromium the module is
skipped, except where UDT_REQUIRE_BROWSER=1 (CI, which installs it) turns that into a failure.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Locator, Page, Route, WebSocket, expect

from tests.console_support import origin_of, require_browser
from tests.support import Api, World

PAGE_TIMEOUT_MS = 60_000  # a loaded 2-core machine parses 3.5 MB of GraphiQL slowly
PLACEHOLDER = '{"Authorization": "Bearer <token printed by udt dev>"}'

require_browser()


class Visit:
    """One fresh browser profile on the GraphiQL page, recording every origin the page reaches for."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.urls: list[str] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.ws_sent: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws: WebSocket) -> None:
        self.urls.append(ws.url)
        ws.on("framesent", lambda payload: self.ws_sent.append(payload if isinstance(payload, str) else payload.decode()))

    async def _route(self, route: Route) -> None:
        """Air gap: only the service answers; a data: URL never leaves the page."""
        url = route.request.url
        if url.startswith("data:") or origin_of(url) == self.origin:
            await route.continue_()
        else:
            self.foreign.append(url)
            await route.abort("internetdisconnected")

    async def open(self) -> None:
        await self.page.context.route("**/*", self._route)
        await self.page.goto(f"{self.origin}/graphql")
        await expect(self.page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible(timeout=PAGE_TIMEOUT_MS)

    async def replace_text(self, editor: str, text: str) -> None:
        """Select all in a CodeMirror editor and paste `text` over it, as a person does."""
        await self.page.locator(editor).click()
        await self.page.keyboard.press("Control+A")
        await self.page.keyboard.insert_text(text)

    async def run(self, headers: dict, query: str) -> None:
        await self.replace_text(".graphiql-editor-tool .CodeMirror:visible", json.dumps(headers))
        await self.replace_text(".graphiql-query-editor .CodeMirror", query)
        # GraphiQL parses an edit 100 ms later (debounced), and only then knows a subscription
        # for one: the page writes the parsed query into its URL at that moment.
        await self.page.wait_for_function("q => new URLSearchParams(location.search).get('q') === q", arg=query)
        await self.page.locator(".graphiql-execute-button").click()

    @property
    def result(self) -> Locator:
        return self.page.locator(".graphiql-response")

    def other_origins(self) -> list[str]:
        return self.foreign + [url for url in self.urls if not url.startswith("data:") and origin_of(url) != self.origin]


@pytest.fixture
async def visit(browser: Browser, api: Api) -> AsyncIterator[Visit]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        found = Visit(await context.new_page(), api.base)
        await found.open()
        yield found
        assert found.errors == [], f"the page threw: {found.errors}"
    finally:
        await context.close()


async def test_graphiql_shows_in_its_headers_tab_how_to_paste_the_token(visit: Visit) -> None:
    headers = visit.page.locator(".graphiql-editor-tool .CodeMirror:visible")
    await expect(headers).to_contain_text(PLACEHOLDER)


async def test_graphiql_runs_a_query_with_the_pasted_token_loading_nothing_from_another_origin(
    visit: Visit, world: World
) -> None:
    await visit.run({"Authorization": f"Bearer {world.admin}"}, "{ viewer { user { userId } tenant { slug } } }")
    await expect(visit.result).to_contain_text(f'"slug": "{world.tenant.slug}"', timeout=PAGE_TIMEOUT_MS)
    await expect(visit.result).to_contain_text('"userId": 1')
    loaded = {urlsplit(url).path for url in visit.urls}
    assert {"/graphiql-assets/graphiql.min.js", "/graphiql-assets/plugin-explorer.umd.js"} <= loaded
    assert visit.other_origins() == []


async def test_graphiql_with_the_placeholder_left_in_the_headers_tab_shows_why_nothing_came(visit: Visit) -> None:
    await visit.run(json.loads(PLACEHOLDER), "{ viewer { user { userId } } }")
    await expect(visit.result).to_contain_text("UNAUTHENTICATED", timeout=PAGE_TIMEOUT_MS)


async def test_graphiql_runs_a_subscription_over_websocket_with_the_token_from_the_headers_tab(
    visit: Visit, api: Api, world: World
) -> None:
    await world.stock(10)
    started = await api("mutation { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true}) { transfer { id } } }", world.admin)
    gid = started["startTransfer"]["transfer"]["id"]
    await api.wait_finished(world.admin, gid)
    await visit.run(
        {"Authorization": f"Bearer {world.admin}"},
        f'subscription {{ transferEvents(transferId: "{gid}") {{ type status processedPairs }} }}',
    )
    await expect(visit.result).to_contain_text('"type": "SUCCEEDED"', timeout=PAGE_TIMEOUT_MS)
    await expect(visit.result).to_contain_text('"processedPairs": 1')
    inits = [json.loads(frame) for frame in visit.ws_sent if '"connection_init"' in frame]
    assert inits and inits[0]["payload"]["Authorization"] == f"Bearer {world.admin}"
    assert any(urlsplit(url).scheme == "ws" for url in visit.urls)
    assert visit.other_origins() == []
