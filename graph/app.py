"""The Starlette application: /graphql (HTTP, WebSocket, GraphiQL), CSV downloads, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from tortoise import connections

from graph import downloads
from graph.context import Context
from graph.schema import schema
from jobs import connection
from jobs.worker import make_worker
from models.db import close_db, open_db

log = logging.getLogger(__name__)


class GraphQLApp(GraphQL):
    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(request=request, response=response, pool=request.app.state.pool)


def graphql_app() -> GraphQLApp:
    origins = [o for o in os.environ.get("UDT_ALLOWED_ORIGINS", "*").split(",") if o]
    return GraphQLApp(
        schema,
        graphql_ide="graphiql",
        # Uploads are POSTs with a multipart body; strawberry then requires a
        # preflighted request, so another site cannot post a file on a user's behalf.
        multipart_uploads_enabled=True,
        keep_alive=True,
        keep_alive_interval=15,
        # Auth is a bearer token, never a cookie, so any page origin may open a socket.
        allowed_origins=origins,
    )


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await connections.get("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {exc}"
    try:
        await asyncio.wait_for(request.app.state.pool.ping(), timeout=2)
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {exc}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503)


def create_app(*, run_worker: bool = False) -> Starlette:
    """The API; with `run_worker`, an arq worker runs in the same event loop (udt dev)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owns_db = await open_db()
        app.state.pool = await connection.arq_pool()
        worker = make_worker(handle_signals=False) if run_worker else None
        task = asyncio.create_task(worker.async_run()) if worker else None
        try:
            yield
        finally:
            if worker and task:
                await worker.close()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await app.state.pool.aclose()
            if owns_db:
                await close_db()

    gql = graphql_app()
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *downloads.routes,
            Route("/graphql", gql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", gql),
        ],
        lifespan=lifespan,
    )
