"""Every refusal the service answers is a JSON GraphQL error with a code: wrong methods, unknown
paths, downloads without a token or the permission. Plain text is left to the CSV files,
/metrics and the GraphiQL page."""

from __future__ import annotations

import httpx
import pytest

import graph.server.downloads

from tests.support import Api, RawConnection, World


async def call(api: Api, method: str, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.request(method, f"{api.base}{path}", headers=headers, content=b"{}" if method != "GET" else None)


def code_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    (error,) = response.json()["errors"]
    assert error["message"].endswith(".")
    return error["extensions"]["code"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_a_method_graphql_does_not_take_is_a_405_json_error_with_allow(api: Api, world: World, method: str) -> None:
    response = await call(api, method, "/graphql", world.admin)
    assert code_of(response, 405) == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert method in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/healthz"), ("PUT", "/readyz"), ("POST", "/exports/people.csv"), ("DELETE", "/transfers/1/audit.csv"), ("POST", "/graphiql-assets/manifest.json")],
)
async def test_a_wrong_method_on_any_route_is_a_405_json_error(api: Api, method: str, path: str) -> None:
    assert code_of(await call(api, method, path), 405) == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("path", ["/", "/nothing", "/graphiql-assets/missing.js", "/exports/other.csv"])
async def test_an_unknown_path_is_a_404_json_error(api: Api, path: str) -> None:
    assert code_of(await call(api, "GET", path), 404) == "NOT_FOUND"


async def test_a_routes_unexpected_failure_is_an_internal_error_with_a_request_id(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(graph.server.downloads, "find_transfer", broken)
    response = await call(api, "GET", "/transfers/VHJhbnNmZXI6MA==/audit.csv", world.admin)
    assert code_of(response, 500) == "INTERNAL_ERROR"
    assert response.json()["errors"][0]["extensions"]["requestId"]
    assert "secret" not in response.text


async def test_downloads_refuse_in_the_same_json_shape(api: Api, world: World) -> None:
    unauthenticated = await call(api, "GET", "/exports/people.csv")
    assert code_of(unauthenticated, 401) == "UNAUTHENTICATED"
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    assert code_of(await call(api, "GET", "/exports/people.csv", world.tokens["clerk"]), 403) == "FORBIDDEN"
    assert code_of(await call(api, "GET", "/transfers/VHJhbnNmZXI6MA==/audit.csv", world.admin), 404) == "NOT_FOUND"


@pytest.mark.parametrize(
    "head",
    [
        "Content-Length: -1",
        "Content-Length: 2\r\nContent-Length: 5000000000",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
    ],
)
async def test_a_request_that_is_not_valid_http_is_a_400_json_error(api: Api, head: str) -> None:
    async with RawConnection(api.base) as conn:
        await conn.send(f"POST /graphql HTTP/1.1\r\nHost: test\r\n{head}\r\n\r\n".encode())
        answer = await conn.answer()
        assert answer.status == 400 and answer.headers["content-type"] == "application/json"
        assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert await conn.closed_by_server()


@pytest.mark.parametrize("query", [None, "{ __typename }"])
async def test_head_on_graphql_is_answered_as_get_is_without_a_body(api: Api, world: World, query: str | None) -> None:
    params = {"query": query} if query else {}
    headers = {"Authorization": f"Bearer {world.admin}", "Accept": "text/html" if query is None else "application/json"}
    async with httpx.AsyncClient(timeout=60) as client:
        got = await client.get(f"{api.base}/graphql", params=params, headers=headers)
        head = await client.head(f"{api.base}/graphql", params=params, headers=headers)
    assert got.status_code == head.status_code == 200
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content)) and head.content == b""
