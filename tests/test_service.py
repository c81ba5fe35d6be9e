"""The service's doors: GraphiQL in a browser, liveness and readiness."""

from __future__ import annotations

import httpx

from tests.support import Api


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


async def test_a_query_with_too_many_aliases_is_refused_before_it_runs(api: Api) -> None:
    many = " ".join(f"a{i}: viewer {{ canTransfer }}" for i in range(40))
    async with httpx.AsyncClient() as client:
        refused = await client.post(f"{api.base}/graphql", json={"query": "{ " + many + " }"})
    errors = refused.json()["errors"]
    assert "alias" in errors[0]["message"].lower()
    assert refused.json().get("data") is None
