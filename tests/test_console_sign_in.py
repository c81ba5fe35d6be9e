"""Signing in to the console, in a real browser: with an API token typed in or carried by the
link `udt dev` prints (in the URL's fragment, which leaves the address bar at once), or through
the organisation's identity provider (Authorization Code with PKCE, renewed before it expires).
Tokens live in session storage only: never local storage, never a cookie. A token the API stops
accepting sends the person back to sign in, told why.

The identity provider is tests/identity_provider (node); its tests are skipped, saying why, where
node or the provider is missing, unless UDT_REQUIRE_PROVIDER=1 (CI) makes that a failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, expect

from models.tenancy import ApiToken
from tests.accessibility import assert_accessible
from tests.console_support import PAGE_TIMEOUT_MS, WIDE, ConsolePage, require_browser
from tests.oidc_provider import REQUIRE_PROVIDER, api_trusting, identity_provider, provider_missing
from tests.support import World, free_port

require_browser()

WRONG_TOKEN = "That API token was not accepted: it is wrong, expired or revoked."
SESSION_ENDED = "Your sign-in has ended or is not valid any more. Sign in again."
TOKEN_KEY = "udt.console.token"


async def test_an_api_token_typed_in_signs_in_to_the_shell(console: ConsolePage, world: World) -> None:
    await console.open()
    await expect(console.page.get_by_role("heading", name="User Data Transfer", level=1)).to_be_visible()
    await assert_accessible(console.page, "the sign-in screen")
    await console.check_outline()
    await console.sign_in_with_token(world.admin)
    await console.expect_shell()
    await expect(console.page.get_by_text("Signed in as")).to_contain_text(world.tenant.slug)
    assert await console.session_storage() == {TOKEN_KEY: world.admin}
    assert await console.local_storage() == {} and await console.cookies() == []


async def test_the_choice_of_single_and_bulk_and_history_are_routes_that_survive_a_reload(
    console: ConsolePage, world: World
) -> None:
    page = console.page
    await console.open()
    await console.sign_in_with_token(world.admin)
    await console.expect_shell()
    await expect(page.get_by_role("radio", name="Single", exact=True)).to_be_checked()
    await page.get_by_role("radio", name="Bulk", exact=True).check()
    await expect(page).to_have_url(f"{console.base}/console/bulk")
    await page.get_by_role("link", name="History", exact=True).click()
    await expect(page).to_have_url(f"{console.base}/console/history")
    await expect(page.get_by_role("heading", name="History", level=2)).to_be_visible()
    await expect(page.get_by_role("radio", name="Bulk", exact=True)).not_to_be_checked()
    await page.go_back()
    await expect(page.get_by_role("radio", name="Bulk", exact=True)).to_be_checked()
    await console.open("/console/transfers/VHJhbnNmZXI6MQ==")  # a deep link, in a page of its own
    await console.expect_shell()  # still signed in: the token is in this tab's session storage
    await expect(page.get_by_role("heading", name="Transfer", level=2)).to_be_visible()


async def test_the_sign_in_link_signs_in_and_its_token_leaves_the_address_bar(console: ConsolePage, world: World) -> None:
    await console.open(f"/console#token={world.admin}")
    await console.expect_shell()
    assert console.page.url == f"{console.base}/console"
    assert world.admin not in await console.page.evaluate("location.href + JSON.stringify(history.state)")
    assert await console.session_storage() == {TOKEN_KEY: world.admin}
    assert await console.local_storage() == {} and await console.cookies() == []
    assert all(world.admin not in url for url in console.urls)  # never sent in a URL


async def test_the_sign_in_link_opened_in_a_tab_already_on_the_console_signs_in(console: ConsolePage, world: World) -> None:
    await console.open()
    await console.expect_signed_out()
    await console.open(f"/console#token={world.admin}")  # only the fragment changes: no reload
    await console.expect_shell()
    assert console.page.url == f"{console.base}/console"


async def test_a_wrong_token_is_told_so_and_stays_signed_out(console: ConsolePage, world: World) -> None:
    await console.open()
    await console.sign_in_with_token(world.admin + "x")
    await expect(console.page.get_by_role("alert")).to_contain_text(WRONG_TOKEN, timeout=PAGE_TIMEOUT_MS)
    await expect(console.page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(console.page, "the sign-in screen, the token refused")
    await console.expect_signed_out()
    assert await console.session_storage() == {}


async def test_a_wrong_token_in_the_link_is_told_so_and_leaves_the_address_bar(console: ConsolePage) -> None:
    await console.open("/console/bulk#token=udt_wrong")
    await expect(console.page.get_by_role("alert")).to_contain_text(WRONG_TOKEN, timeout=PAGE_TIMEOUT_MS)
    assert console.page.url == f"{console.base}/console/bulk"
    assert await console.session_storage() == {}


async def test_a_token_revoked_while_signed_in_sends_the_person_back_to_sign_in(console: ConsolePage, world: World) -> None:
    token = await ApiToken.issue(world.users[1])
    await console.open()
    await console.sign_in_with_token(token)
    await console.expect_shell()
    await console.page.wait_for_load_state("networkidle")  # the first screen's own requests are answered
    row = await ApiToken.get(token_hash=ApiToken.hash(token))
    assert await ApiToken.revoke(row.id)
    await console.page.get_by_role("radio", name="Bulk", exact=True).check()  # the next request is refused
    await console.expect_signed_out()
    await expect(console.page.get_by_role("alert")).to_contain_text(SESSION_ENDED)
    assert await console.session_storage() == {}


async def test_sign_out_forgets_the_token(console: ConsolePage, world: World) -> None:
    await console.open()
    await console.sign_in_with_token(world.admin)
    await console.expect_shell()
    await console.page.get_by_role("button", name="Sign out").click()
    await console.expect_signed_out()
    assert await console.session_storage() == {}
    await console.page.reload()
    await console.expect_signed_out()


# --- through the organisation's identity provider ------------------------------------------------

ACCESS_TOKEN_SECONDS = 65  # renewed 60 s before it expires: 5 s after sign-in


@dataclass
class OidcConsole:
    console: ConsolePage
    issuer: str


@pytest.fixture
async def oidc_console(browser: Browser, world: World, redis_url: str) -> AsyncIterator[OidcConsole]:
    """The console of an API trusting the real provider, whose console client sends the person back
    to this API's /console/callback; its access tokens live ACCESS_TOKEN_SECONDS."""
    if (missing := provider_missing()) is not None and not REQUIRE_PROVIDER:
        pytest.skip(f"no real identity provider: {missing}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = identity_provider(
        world.tenant.slug,
        CONSOLE_REDIRECT=f"{base}/console/callback",
        CONSOLE_SIGNED_OUT=f"{base}/console/",
        ACCESS_TOKEN_SECONDS=str(ACCESS_TOKEN_SECONDS),
    )
    async with provider as issuer, api_trusting(
        issuer, port=port, OIDC_CLIENT_ID="udt-console", OIDC_RESOURCE="urn:udt:api"
    ) as (api, _):
        context = await browser.new_context(viewport=WIDE)
        try:
            found = ConsolePage(await context.new_page(), api.base, allowed=(issuer,))
            await found.start()
            yield OidcConsole(found, issuer)
            found.check_clean()
        finally:
            await context.close()


async def sign_in_at_the_provider(console: ConsolePage, issuer: str, username: str) -> None:
    """"Sign in" on the console, then the provider's own login and consent pages."""
    page = console.page
    await console.open("/console/history")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("textbox", name="Enter any login").fill(username)
    await page.get_by_placeholder("and password").fill("any")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()
    await console.expect_shell()


def oidc_user(storage: dict[str, str]) -> dict:
    """What oidc-client-ts keeps of the signed-in person: their tokens, among the rest."""
    (user,) = [json.loads(value) for key, value in storage.items() if key.startswith("oidc.user:")]
    return user


def access_token(storage: dict[str, str]) -> str:
    return oidc_user(storage)["access_token"]


async def test_sign_in_through_the_identity_provider_comes_back_to_the_page_it_left(oidc_console: OidcConsole) -> None:
    console, issuer = oidc_console.console, oidc_console.issuer
    await sign_in_at_the_provider(console, issuer, "admin")
    await expect(console.page).to_have_url(f"{console.base}/console/history")  # the code left the address bar
    await expect(console.page.get_by_text("Signed in as")).to_contain_text("(1)")
    user = oidc_user(await console.session_storage())
    assert user["access_token"].count(".") == 2 and user["refresh_token"]  # in session storage
    assert await console.local_storage() == {}
    tokens = [user["access_token"], user["refresh_token"], user["id_token"]]
    # The provider keeps its own session in its cookies; none holds a token of the console's.
    cookies = await console.cookies()
    assert not any(token in cookie["value"] for token in tokens for cookie in cookies)
    provider_calls = {urlsplit(url).path for url in console.urls if url.startswith(issuer)}
    # The console itself asks the provider for its discovery and tokens only; the rest are navigations.
    assert {"/.well-known/openid-configuration", "/token"} <= provider_calls


async def test_the_access_token_is_renewed_before_it_expires_and_used_from_then_on(oidc_console: OidcConsole) -> None:
    console, issuer = oidc_console.console, oidc_console.issuer
    await sign_in_at_the_provider(console, issuer, "admin")
    first = access_token(await console.session_storage())
    async with asyncio.timeout(40):
        while (renewed := access_token(await console.session_storage())) == first:
            await asyncio.sleep(0.5)
    sent: list[str] = []
    console.page.on("request", lambda request: sent.append(request.headers.get("authorization", "")))
    await console.page.get_by_role("radio", name="Bulk", exact=True).check()
    await expect(console.page.get_by_text("Signed in as")).to_be_visible()
    async with asyncio.timeout(10):
        while f"Bearer {renewed}" not in sent:
            await asyncio.sleep(0.1)
    await console.expect_shell()


async def provider_cookies(console: ConsolePage) -> set[str]:
    """The names of the cookies the provider keeps (it alone sets any)."""
    return {cookie["name"] for cookie in await console.cookies()}


async def test_sign_out_ends_the_session_here_and_at_the_provider(oidc_console: OidcConsole) -> None:
    console, issuer = oidc_console.console, oidc_console.issuer
    await sign_in_at_the_provider(console, issuer, "admin")
    assert "_session" in await provider_cookies(console)
    await console.page.get_by_role("button", name="Sign out").click()
    await console.page.get_by_role("button", name="Yes, sign me out").click()  # the provider's page
    await expect(console.page).to_have_url(f"{console.base}/console/", timeout=PAGE_TIMEOUT_MS)
    await console.expect_signed_out()
    await assert_accessible(console.page, "the sign-in screen with an identity provider")
    assert not any(key.startswith("oidc.user:") for key in await console.session_storage())
    assert "_session" not in await provider_cookies(console)  # the provider ended its session
    await console.page.get_by_role("button", name="Sign in").click()  # the provider asks again who it is
    await expect(console.page.get_by_role("textbox", name="Enter any login")).to_be_visible(timeout=PAGE_TIMEOUT_MS)


async def test_without_signing_out_the_providers_session_lives_on_and_needs_no_login(oidc_console: OidcConsole) -> None:
    """The other side of the test above: the login page after "Sign out" shows that the provider's
    session ended, because while it lives "Sign in" comes straight back signed in."""
    console, issuer = oidc_console.console, oidc_console.issuer
    page = console.page
    await sign_in_at_the_provider(console, issuer, "admin")
    await page.evaluate("sessionStorage.clear()")  # the tab forgets its tokens; the provider is not told
    await page.reload()
    await console.expect_signed_out()
    assert "_session" in await provider_cookies(console)  # the provider's session, in its cookie
    asked = len(console.urls)
    await page.get_by_role("button", name="Sign in").click()
    await console.expect_shell()
    assert not [url for url in console.urls[asked:] if url.startswith(f"{issuer}/interaction")]  # no login, no consent
