"""The console at /console is served by the API from the Python package: the page for any route
under it (a deep link survives a reload), its hashed assets cached for good, its settings at
/console/config.json, and on every answer a Content-Security-Policy that lets the page run only
its own scripts and styles and call only this API (and the identity provider, when there is one)."""

from __future__ import annotations

import gzip
import re
import tomllib
from pathlib import Path

import httpx
import pytest

from graph.server import console
from tests.oidc_provider import api_trusting, provider_with_keys
from tests.support import Api, RawConnection

JS_BUDGET = 250 * 1024  # bytes of JavaScript shipped, gzipped
PAGE = console.STATIC_DIR / "index.html"
SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def assets_linked() -> list[str]:
    """The asset paths the page loads, as index.html names them."""
    return re.findall(r'(?:src|href)="(/console/assets/[^"]+)"', PAGE.read_text())


def directives(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def assert_strict(response: httpx.Response, connect: list[str]) -> None:
    assert directives(response) == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": connect,
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
    }
    assert {name: response.headers.get(name) for name in SECURITY} == SECURITY


async def request(api: Api, method: str, path: str, **options: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api.base, timeout=60) as client:
        return await client.request(method, path, **options)  # type: ignore[arg-type]


def own_connect(api: Api) -> list[str]:
    host = api.base.removeprefix("http://")
    return ["'self'", f"ws://{host}", f"wss://{host}"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/console", 200),
        ("GET", "/console/", 200),
        ("GET", "/console/transfers/VHJhbnNmZXI6MQ==", 200),
        ("GET", "/console/config.json", 200),
        ("HEAD", "/console/history", 200),
        ("GET", "/console/assets/missing.js", 404),
        ("POST", "/console", 405),
        ("DELETE", "/console/config.json", 405),
    ],
)
async def test_every_console_answer_carries_the_strict_policy(api: Api, method: str, path: str, status: int) -> None:
    response = await request(api, method, path)
    assert response.status_code == status
    assert_strict(response, own_connect(api))


async def test_every_asset_the_page_loads_carries_the_strict_policy_and_is_cached_for_good(api: Api) -> None:
    linked = assets_linked()
    kinds = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}  # the icon too: no /favicon.ico 404
    assert {path[path.rindex("."):] for path in linked} == set(kinds)
    for path in linked:
        response = await request(api, "GET", path)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-type"].startswith(kinds[path[path.rindex("."):]])
        assert_strict(response, own_connect(api))


@pytest.mark.parametrize("path", ["/console/transfers/VHJhbnNmZXI6MQ==", "/console/history", "/console/bulk", "/console/nothing/here"])
async def test_a_deep_link_is_answered_with_the_page_itself_never_cached(api: Api, path: str) -> None:
    response = await request(api, "GET", path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == PAGE.read_bytes()


def test_the_page_has_no_inline_script_or_style_and_loads_only_its_own_assets() -> None:
    html = PAGE.read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r'\bsrc="/console/assets/', tag) for tag in scripts)
    assert set(re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)) == {""}
    assert "<style" not in html and " style=" not in html and "javascript:" not in html


async def test_head_is_answered_as_get_without_a_body(api: Api) -> None:
    got = await request(api, "GET", "/console/history")
    head = await request(api, "HEAD", "/console/history")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["content-security-policy"] == got.headers["content-security-policy"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_a_method_the_console_does_not_take_is_a_405_json_error_with_allow(api: Api, method: str) -> None:
    response = await request(api, method, "/console/history", content=b"{}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_without_oidc_the_console_signs_in_with_an_api_token(api: Api) -> None:
    response = await request(api, "GET", "/console/config.json")
    assert response.headers["cache-control"] == "no-cache"
    assert response.json() == {"apiPath": "/graphql", "oidc": None}


async def test_with_oidc_the_console_signs_in_at_the_provider_which_alone_it_may_call_besides_the_api() -> None:
    async with provider_with_keys() as provider, api_trusting(
        provider.issuer, OIDC_CLIENT_ID="udt-console", OIDC_RESOURCE="urn:udt:api", OIDC_SCOPE="openid profile udt"
    ) as (api, _):
        response = await request(api, "GET", "/console/config.json")
        page = await request(api, "GET", "/console")
    assert response.json() == {
        "apiPath": "/graphql",
        "oidc": {"issuer": provider.issuer, "clientId": "udt-console", "scope": "openid profile udt", "resource": "urn:udt:api"},
    }
    assert_strict(page, [*own_connect(api), provider.issuer])


async def test_an_issuer_without_the_consoles_client_id_leaves_the_console_on_api_tokens() -> None:
    async with provider_with_keys() as provider, api_trusting(provider.issuer, OIDC_CLIENT_ID="") as (api, _):
        response = await request(api, "GET", "/console/config.json")
    assert response.json()["oidc"] is None
    assert_strict(response, own_connect(api))


async def test_a_host_header_cannot_write_into_the_policy(api: Api) -> None:
    async with RawConnection(api.base) as conn:
        await conn.send(b"GET /console HTTP/1.1\r\nHost: x; script-src *\r\n\r\n")
        answer = await conn.answer()
    assert answer.status == 200
    policy = answer.headers["content-security-policy"]
    assert "connect-src 'self';" in policy and "script-src *" not in policy


@pytest.mark.parametrize(
    "path",
    [
        "/console/../x",
        "/console/assets/../index.html",
        "/console/assets/../../console.py",
        "/console/assets/%2e%2e/%2e%2e/console.py",
        "/console/%00",
        "/console/%ff%fe",
        "/console/assets/%00.js",
        "/console//",
        "/console/assets/",
        "/console/\xe9t\xe9",
        "/console/" + "a" * 8000,
    ],
)
async def test_an_odd_path_is_never_a_server_error_and_never_reads_a_file_outside_the_build(api: Api, path: str) -> None:
    async with RawConnection(api.base) as conn:
        await conn.send(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode("latin-1"))
        answer = await conn.answer()
    assert answer.status in (200, 400, 404), answer
    assert b"import" not in answer.body  # no Python source
    if answer.status == 200:
        assert answer.body == PAGE.read_bytes()
        assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_the_javascript_shipped_is_at_most_250_kb_gzipped() -> None:
    scripts = sorted((console.STATIC_DIR / "assets").glob("*.js"))
    assert scripts
    shipped = sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in scripts)
    assert shipped <= JS_BUDGET, f"{shipped} bytes of JavaScript gzipped, over {JS_BUDGET}"


def test_the_build_is_in_the_package_data() -> None:
    """pip install ships the console: no Node at run time."""
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["graph.server"]
    assert {"static/console/*", "static/console/assets/*"} <= set(shipped)
