"""GraphiQL's page and the assets it loads, served by this service (no CDN)."""

from __future__ import annotations

import functools
import html
import json
from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

# GraphiQL's scripts ship in this package (frontend/graphiql builds them from npm):
# the page works where the browser cannot reach a CDN.
STATIC_DIR = Path(__file__).parent / "static"
GRAPHIQL_ASSETS = "/graphiql-assets"


@functools.cache
def graphiql_page() -> str:
    """The GraphiQL page, loading each asset of the manifest from this service, integrity checked."""
    manifest = json.loads((STATIC_DIR / "graphiql" / "manifest.json").read_text("utf-8"))
    tags = []
    for asset in manifest["files"]:
        # Relative to /graphql, so the page also works behind a path prefix.
        url = html.escape(f"{GRAPHIQL_ASSETS.lstrip('/')}/{asset['file']}")
        sri = html.escape(asset["integrity"])
        if asset["file"].endswith(".css"):
            tags.append(f'<link rel="stylesheet" href="{url}" integrity="{sri}" />')
        else:
            tags.append(f'<script src="{url}" integrity="{sri}"></script>')
    return (STATIC_DIR / "graphiql.html").read_text("utf-8").replace("{{assets}}", "\n    ".join(tags))


def assets() -> Mount:
    """GraphiQL's scripts and styles, under GRAPHIQL_ASSETS."""
    return Mount(GRAPHIQL_ASSETS, StaticFiles(directory=STATIC_DIR / "graphiql"), name="graphiql-assets")
