"""The console at /console: the reference page built from frontend/console into static/console/.

Any path under /console that is not an asset or the settings is the page itself, so a route of
the page (/console/transfers/...) survives a reload. The assets have content-hashed names and are
cached for good; the page and its settings are asked for again each time. Every answer here, the
refusals too, carries a strict Content-Security-Policy: scripts and styles from this origin only,
calls to this API only (and to the identity provider, which the page asks for its tokens).
Files are read from the package once and served from memory: no path a caller sends ever reaches
the file system.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from graph.server import refusals
from models import settings

CONSOLE = "/console"
STATIC_DIR = Path(__file__).parent / "static" / "console"
METHODS = "GET, HEAD"
API_PATH = "/graphql"
IMMUTABLE = "public, max-age=31536000, immutable"  # a hashed name is never reused for other bytes
# A Host header that is a plain host name or address with an optional port, safe to put in a header.
PLAIN_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


@functools.cache
def assets() -> dict[str, Asset]:
    """The built assets by name (as the page links them under /console/assets/)."""
    found = {}
    for path in sorted((STATIC_DIR / "assets").iterdir()):
        media_type = "text/javascript" if path.suffix == ".js" else mimetypes.guess_type(path.name)[0]
        found[path.name] = Asset(path.read_bytes(), media_type or "application/octet-stream")
    return found


@functools.cache
def page() -> bytes:
    return (STATIC_DIR / "index.html").read_bytes()


def runtime_config() -> dict[str, object]:
    """What the page needs to know at run time (/console/config.json): where the API is, and how to
    sign in. OIDC needs both the issuer and the console's public client; else API tokens."""
    oidc = None
    if settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID:
        oidc = {
            "issuer": settings.OIDC_ISSUER,
            "clientId": settings.OIDC_CLIENT_ID,
            "scope": settings.OIDC_SCOPE,
            "resource": settings.OIDC_RESOURCE or None,
        }
    return {"apiPath": API_PATH, "oidc": oidc}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Policy:
    """The security headers of every console answer, with the request's own WebSocket origin."""

    def __init__(self, issuer_origin: str | None) -> None:
        self.issuer_origin = issuer_origin

    def headers(self, request: Request) -> dict[str, str]:
        connect = ["'self'"]
        host = request.headers.get("host", "")
        if PLAIN_HOST.match(host):
            # 'self' covers ws(s) of this origin in current browsers; named anyway for older ones.
            connect += [f"wss://{host}"] if request.url.scheme == "https" else [f"ws://{host}", f"wss://{host}"]
        if self.issuer_origin:
            connect.append(self.issuer_origin)
        csp = "; ".join([
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {' '.join(connect)}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ])
        return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class Console:
    """The ASGI app behind every /console route, taking any method (others are refused here, with
    the same security headers); the settings are read once, when the app is made."""

    def __init__(self) -> None:
        config = runtime_config()
        self.config = json.dumps(config, separators=(",", ":")).encode()
        self.policy = Policy(_origin(settings.OIDC_ISSUER) if config["oidc"] else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = self.answer(request)
        response.headers.update(self.policy.headers(request))
        await response(scope, receive, send)

    def answer(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return refusals.error_response(
                405,
                f"This path does not take {request.method} requests; it takes {METHODS}.",
                "METHOD_NOT_ALLOWED",
                headers={"Allow": METHODS},
            )
        path = request.path_params.get("path", "")
        if path == "config.json":
            return Response(self.config, media_type="application/json", headers={"Cache-Control": "no-cache"})
        if path.startswith("assets/"):
            asset = assets().get(path.removeprefix("assets/"))
            if asset is None:
                return refusals.error_response(404, "There is nothing at this path.", "NOT_FOUND")
            return Response(asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE})
        return Response(page(), media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


def routes() -> list[BaseRoute]:
    """/console and everything under it."""
    app = Console()
    return [Route(CONSOLE, app), Route(CONSOLE + "/{path:path}", app)]
