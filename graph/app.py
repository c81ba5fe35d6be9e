"""The Starlette application: /graphql (HTTP, WebSocket, GraphiQL), CSV downloads, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType
from tortoise import connections

from graph import downloads
from graph.context import Context
from graph.schema import schema
from jobs import connection
from jobs.worker import keep_running, make_worker
from models import settings
from models.db import close_db, open_db

log = logging.getLogger(__name__)


class GraphQLApp(GraphQL):
    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(request=request, response=response, pool=request.app.state.pool)

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """Refuse a WebSocket at `connection_init` unless it carries a live token: graphql-transport-ws
        closes with 4403 Forbidden, graphql-ws answers `connection_error` (with this payload)."""
        if await context.operator() is None:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "A valid token is required in the connection_init payload."}
            )
        return UNSET  # a plain connection_ack, with no payload


def graphql_app() -> GraphQLApp:
    return GraphQLApp(
        schema,
        graphql_ide="graphiql",
        # Off by default in strawberry because a cross-site form could post a file
        # with the user's cookies. Here auth is only ever an Authorization header,
        # which no cross-site form can send, so uploads are safe to accept.
        multipart_uploads_enabled=True,
        keep_alive=True,
        keep_alive_interval=15,
        allowed_origins=settings.ALLOWED_ORIGINS,
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
        task = asyncio.create_task(keep_running(worker)) if worker else None
        try:
            yield
        finally:
            if worker and task:
                # The main loop first, then the jobs it started: their pairs roll back,
                # and the lanes' leases run out for a worker of the next start to take.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker.close()
            await app.state.pool.aclose()
            if owns_db:
                await close_db()

    gql = graphql_app()
    # Front ends on other origins call with a bearer header, never credentials.
    cors = Middleware(
        CORSMiddleware,
        allow_origins=settings.ALLOWED_ORIGINS,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *downloads.routes,
            Route("/graphql", gql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", gql),
        ],
        middleware=[cors],
        lifespan=lifespan,
    )
