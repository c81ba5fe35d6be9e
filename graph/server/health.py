"""Health, readiness and metrics: the routes operators and Prometheus poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise import connections

log = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _check(name: str, probe: Awaitable[object]) -> str:
    """"ok" or "error": what failed goes to the log, never to whoever asks."""
    try:
        await asyncio.wait_for(probe, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readyz: %s is not ready: %r", name, exc)
        return "error"


async def readyz(request: Request) -> JSONResponse:
    checks = {
        "database": await _check("the database", connections.get("default").execute_query("SELECT 1")),
        "redis": await _check("Redis", request.app.state.pool.ping()),
    }
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503)


async def metrics_page(request: Request) -> Response:
    """Prometheus's text format; collected on a thread, since the backlog is read on this loop."""
    return Response(await run_in_threadpool(generate_latest), media_type=CONTENT_TYPE_LATEST)
