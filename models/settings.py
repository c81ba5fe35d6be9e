"""Settings, read once from the environment.

Every knob of the service lives here so that the README can list them all.
"""

from __future__ import annotations

import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# Where embedded runs keep the SQLite file and the private Redis.
DATA_DIR: str = os.environ.get("UDT_DATA_DIR", str(Path("var").resolve()))


def sqlite_url(path: Path) -> str:
    """SQLite with a busy timeout, so that several processes can share the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite://{path}?busy_timeout=10000"


DATABASE_URL: str = os.environ.get("DATABASE_URL") or sqlite_url(Path(DATA_DIR) / "udt.sqlite3")
# Empty means "start a private Redis" (udt dev and the tests do that).
REDIS_URL: str = os.environ.get("REDIS_URL", "")
MAX_UPLOAD_BYTES: int = _int("UDT_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
MAX_BULK_PAIRS: int = _int("UDT_MAX_BULK_PAIRS", 2000)
# Pairs per arq job: small, so that a killed worker costs little (see jobs/worker.py).
CHUNK_SIZE: int = _int("UDT_CHUNK_SIZE", 20)
JOB_TIMEOUT_SECONDS: int = _int("UDT_JOB_TIMEOUT_SECONDS", 60)
# The reconciler re-enqueues pending pairs of transfers older than this (lost jobs).
RECONCILE_GRACE_SECONDS: int = _int("UDT_RECONCILE_GRACE_SECONDS", 30)
# How long transfer events stay in Redis after a transfer finished.
EVENTS_TTL_SECONDS: int = _int("UDT_EVENTS_TTL_SECONDS", 7 * 24 * 3600)
MAX_PAGE_SIZE: int = _int("UDT_MAX_PAGE_SIZE", 100)
QUEUE_NAME: str = os.environ.get("UDT_QUEUE_NAME", "udt:queue")
# Page origins that may call the API from a browser (CORS) and open WebSockets.
# Safe as "*": auth is a bearer header, never a cookie.
ALLOWED_ORIGINS: list[str] = [o.strip() for o in os.environ.get("UDT_ALLOWED_ORIGINS", "*").split(",") if o.strip()]

MODEL_MODULES = ["models.tenancy", "models.userdata", "models.transfers"]


def tortoise_config(database_url: str | None = None) -> dict:
    return {
        "connections": {"default": database_url or DATABASE_URL},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


TORTOISE_ORM = tortoise_config()
