"""The Starlette application: its routes (/graphql, downloads, health, GraphiQL's assets, the console), CORS and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from asgi_correlation_id import CorrelationIdMiddleware
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from graph.auth.oidc import Verifier
from graph.live.fanout import Fanout
from graph.process import logs
from graph.server import console, downloads, graphiql, refusals
from graph.server.health import healthz, metrics_page, readyz
from graph.server.view import graphql_app
from jobs import connection, metrics
from jobs.worker import keep_running, make_worker
from models import settings
from models.db import close_db, open_db


# Headers common browser clients send: a preflight refusing any one of them breaks the whole app.
CLIENT_HEADERS = [
    "Apollo-Require-Preflight",  # apollo-upload-client's docs have you add it (Apollo Server's CSRF guard)
    "apollographql-client-name",  # Apollo client awareness
    "apollographql-client-version",
    "x-apollo-operation-name",
    "traceparent",  # W3C trace context (OpenTelemetry)
    "tracestate",
    "baggage",
    "sentry-trace",  # Sentry's browser SDK
]
# Seconds a browser may reuse a preflight's answer (Chromium caps it at 7200, Firefox at 86400).
PREFLIGHT_MAX_AGE = 7200


def _observability() -> tuple[list[Route], list[Middleware]]:
    """/metrics here unless switched off or given a port of its own; X-Request-ID on every request."""
    routes = [Route("/metrics", metrics_page)] if settings.METRICS_ENABLED and settings.METRICS_PORT is None else []
    request_ids = Middleware(
        CorrelationIdMiddleware, header_name=logs.REQUEST_ID_HEADER, validator=logs.acceptable_request_id
    )
    return routes, [request_ids]


def create_app(*, run_worker: bool = False) -> Starlette:
    """The API; with `run_worker`, an arq worker runs in the same event loop (udt dev)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owns_db = await open_db()
        app.state.pool = await connection.arq_pool()
        app.state.fanout = Fanout(app.state.pool)
        metrics.watch_backlog(app.state.pool)
        if oidc is not None:
            oidc.keys.start()  # in the background: start-up never waits for the identity provider
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
            if oidc is not None:
                await oidc.keys.close()
            if owns_db:
                await close_db()

    oidc = Verifier.from_settings()
    gql = graphql_app()
    # Front ends on other origins call with a bearer header, never credentials.
    cors = Middleware(
        CORSMiddleware,
        allow_origins=settings.ALLOWED_ORIGINS,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", logs.REQUEST_ID_HEADER, *CLIENT_HEADERS],
        expose_headers=[logs.REQUEST_ID_HEADER, "Content-Disposition"],  # the CSV downloads' file names
        max_age=PREFLIGHT_MAX_AGE,
    )
    observe_routes, observe_middleware = _observability()
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *downloads.routes,
            Route("/graphql", gql, methods=["GET", "POST"]),  # other methods: 405 with Allow
            WebSocketRoute("/graphql", gql),
            *observe_routes,
            graphiql.assets(),
            *console.routes(),
        ],
        middleware=[*observe_middleware, cors],
        exception_handlers={StarletteHTTPException: refusals.starlette_refusal, Exception: refusals.unexpected},
        lifespan=lifespan,
    )
    app.state.oidc = oidc  # who checks OpenID Connect access tokens (graph/core/context.py asks)
    return app
