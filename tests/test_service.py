"""The service's doors: GraphiQL in a browser, liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from gql import GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed

from models import settings
from tests.support import Api, World, serving


async def test_graphiql_is_served_to_a_browser(api: Api) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{api.base}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_healthz_says_the_process_is_up(api: Api) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{api.base}/healthz")
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database_and_redis(api: Api) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{api.base}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_a_front_end_on_another_origin_may_call_with_a_bearer_header(api: Api) -> None:
    async with httpx.AsyncClient() as client:
        preflight = await client.options(
            f"{api.base}/graphql",
            headers={
                "Origin": "https://frontend.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://frontend.example.com")
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


async def test_a_query_with_too_many_aliases_is_refused_before_it_runs(api: Api, world: World) -> None:
    many = " ".join(f"a{i}: viewer {{ canTransfer }}" for i in range(40))
    async with httpx.AsyncClient() as client:
        refused = await client.post(f"{api.base}/graphql", json={"query": "{ " + many + " }"}, headers={"Authorization": f"Bearer {world.admin}"})
    errors = refused.json()["errors"]
    assert "alias" in errors[0]["message"].lower()
    assert refused.json().get("data") is None


ALLOWED = "https://allowed.example.com"
ELSEWHERE = "https://elsewhere.example.com"


@pytest.fixture
async def strict_api(database: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """A second API instance started with UDT_ALLOWED_ORIGINS=https://allowed.example.com."""
    from graph.server.app import create_app

    monkeypatch.setattr(settings, "ALLOWED_ORIGINS", [ALLOWED])
    async with serving(create_app()) as base:
        yield Api(base)


async def test_with_listed_origins_only_those_get_cors_headers(strict_api: Api, world: World) -> None:
    query = {"query": "{ viewer { user { userId } } }"}
    auth = {"Authorization": f"Bearer {world.admin}"}
    async with httpx.AsyncClient() as client:
        allowed = await client.post(f"{strict_api.base}/graphql", json=query, headers={**auth, "Origin": ALLOWED})
        other = await client.post(f"{strict_api.base}/graphql", json=query, headers={**auth, "Origin": ELSEWHERE})
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        allowed_pre = await client.options(f"{strict_api.base}/graphql", headers={**preflight, "Origin": ALLOWED})
        other_pre = await client.options(f"{strict_api.base}/graphql", headers={**preflight, "Origin": ELSEWHERE})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert allowed_pre.status_code == 200 and allowed_pre.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in other_pre.headers


async def test_with_listed_origins_a_websocket_from_another_origin_is_refused(strict_api: Api, world: World) -> None:
    query = GraphQLRequest("{ viewer { user { userId } } }")
    async with asyncio.timeout(30):
        async with strict_api.ws(world.admin, origin=ALLOWED) as session:
            assert (await session.execute(query))["viewer"]["user"]["userId"] == 1
        with pytest.raises(TransportConnectionFailed) as refused:
            async with strict_api.ws(world.admin, origin=ELSEWHERE) as session:
                await session.execute(query)
    handshake = refused.value.__cause__
    assert isinstance(handshake, websockets.exceptions.InvalidStatus) and handshake.response.status_code == 403


async def test_readyz_says_redis_is_down_without_saying_why(database: str, tmp_path, monkeypatch) -> None:
    from graph.server.app import create_app
    from tests.processes import RedisServer
    from tests.support import free_port

    redis = RedisServer(free_port(), tmp_path)
    await redis.start()
    monkeypatch.setattr(settings, "REDIS_URL", redis.url)
    try:
        async with serving(create_app()) as base, httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/readyz")).status_code == 200
            await redis.kill()
            response = await client.get(f"{base}/readyz")
    finally:
        await redis.kill()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "error"}


def test_a_result_orjson_cannot_encode_is_still_answered_as_json_text() -> None:
    """orjson encodes every answer, but takes no integer past 64 bits and no lone surrogate
    (which a client's text can carry into an answer): json.dumps does those."""
    import json

    from graph.api.schema import schema
    from graph.server.view import GraphQLApp

    app = GraphQLApp(schema)
    assert app.encode_json({"data": {"n": 7, "name": "Zoë"}}) == '{"data":{"n":7,"name":"Zoë"}}'
    for odd in ({"data": {"n": 2**70}}, {"data": {"name": "\ud800"}}):
        assert json.loads(app.encode_json(odd)) == odd
