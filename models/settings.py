"""Settings, read once from the environment.

Every knob of the service lives here so that the README can list them all.
"""

from __future__ import annotations

import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


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
# Work leases (see models/leases.py): a worker holds a lane of a transfer under a
# lease it renews every third of this; a dead worker's lane is taken over once the
# lease has run out, so recovery takes at most this plus one reconcile period.
LEASE_SECONDS: float = _float("UDT_LEASE_SECONDS", 10)
# How often every worker looks for lanes to take over or to enqueue again.
RECONCILE_SECONDS: float = _float("UDT_RECONCILE_SECONDS", 2)
# The reconciler leaves a transfer younger than this to the enqueue after its start.
RECONCILE_GRACE_SECONDS: float = _float("UDT_RECONCILE_GRACE_SECONDS", 10)
# Lanes of a bulk transfer: pairs applied side by side (a single transfer has one).
BULK_LANES: int = _int("UDT_BULK_LANES", 4)
# A lane yields its worker slot to waiting jobs after this long (fairness between tenants).
SLICE_SECONDS: float = _float("UDT_SLICE_SECONDS", 1)
# Jobs an arq worker runs at once.
WORKER_MAX_JOBS: int = _int("UDT_WORKER_MAX_JOBS", 10)
# The niceness `udt worker` runs at: on a machine it shares with an API, bulk work
# takes the CPU the API leaves, so interactive requests stay fast while a bulk runs.
WORKER_NICE: int = _int("UDT_WORKER_NICE", 10)
# Attempts at a pair (transient errors, dead workers) before it fails with TRANSFER_ERROR.
MAX_ATTEMPTS: int = _int("UDT_MAX_ATTEMPTS", 5)
# How long a SIGTERMed worker waits for the pairs in flight before it cancels them.
DRAIN_SECONDS: int = _int("UDT_DRAIN_SECONDS", 600)
# PostgreSQL checks this often whether the client of a running statement is still
# there (client_connection_check_interval): a dead worker's statement and its row
# locks go away in seconds instead of running to the end.
PG_CONNECTION_CHECK_MS: int = _int("UDT_PG_CONNECTION_CHECK_MS", 2000)
# Days after a transfer finishes during which it can be reverted: its pairs are
# journaled (models/journal.py) and the journal is purged when the window ends.
# 0 turns undo off: nothing is journaled and no transfer can be reverted.
REVERT_DAYS: float = _float("UDT_REVERT_DAYS", 30)
# How often a worker purges what has outlived its use (expired journals, old idempotency keys).
PURGE_SECONDS: float = _float("UDT_PURGE_SECONDS", 3600)
# How long transfer events stay in Redis after a transfer finished.
EVENTS_TTL_SECONDS: int = _int("UDT_EVENTS_TTL_SECONDS", 7 * 24 * 3600)
MAX_PAGE_SIZE: int = _int("UDT_MAX_PAGE_SIZE", 100)
QUEUE_NAME: str = os.environ.get("UDT_QUEUE_NAME", "udt:queue")
# Page origins that may call the API from a browser (CORS) and open WebSockets.
# Safe as "*": auth is a bearer header, never a cookie.
ALLOWED_ORIGINS: list[str] = [o.strip() for o in os.environ.get("UDT_ALLOWED_ORIGINS", "*").split(",") if o.strip()]

# Sign-in with an OpenID Connect identity provider (graph/auth/oidc.py): on when the issuer is set.
# Discovery at {issuer}/.well-known/openid-configuration gives the key set's URL.
OIDC_ISSUER: str = os.environ.get("UDT_OIDC_ISSUER", "").strip()
# Required with the issuer: a token's `aud` must contain it.
OIDC_AUDIENCE: str = os.environ.get("UDT_OIDC_AUDIENCE", "").strip()
# The claims naming the operator: the tenant's slug, and the user's username in that tenant.
OIDC_TENANT_CLAIM: str = os.environ.get("UDT_OIDC_TENANT_CLAIM", "").strip() or "udt_tenant"
OIDC_USERNAME_CLAIM: str = os.environ.get("UDT_OIDC_USERNAME_CLAIM", "").strip() or "preferred_username"
# The public client a browser front end signs in with (Authorization Code with PKCE); never used to check tokens.
OIDC_CLIENT_ID: str = os.environ.get("UDT_OIDC_CLIENT_ID", "").strip()
# What the console asks the provider for at sign-in: scopes, and a resource indicator (RFC 8707)
# for providers that name the API that way; empty: none.
OIDC_SCOPE: str = os.environ.get("UDT_OIDC_SCOPE", "").strip() or "openid profile"
OIDC_RESOURCE: str = os.environ.get("UDT_OIDC_RESOURCE", "").strip()
# Clock skew allowed on a token's exp, nbf and iat.
OIDC_LEEWAY_SECONDS: float = _float("UDT_OIDC_LEEWAY_SECONDS", 60)

# Keys that sign download links (graph/auth/links.py): comma-separated, newest first. The first
# signs; every one listed still opens the links it signed, so a key is rotated by putting a new
# one in front and dropping the old one once its links have expired. Every API instance of a
# deployment needs the same list; `udt serve` refuses to start without one, `udt dev` makes its own.
SECRET_KEYS: list[str] = [k.strip() for k in os.environ.get("UDT_SECRET_KEY", "").split(",") if k.strip()]
# How long a download link works after it was asked for.
DOWNLOAD_LINK_SECONDS: int = _int("UDT_DOWNLOAD_LINK_SECONDS", 300)

# Webhooks (models/webhook_urls.py): "1" lifts the rules that an endpoint's URL be https and reach
# only public addresses, for development and tests (`udt dev` sets it, and says so).
WEBHOOK_ALLOW_PRIVATE: bool = os.environ.get("UDT_WEBHOOK_ALLOW_PRIVATE", "").strip() == "1"
# Webhook attempts one worker process makes at once (each may wait for a receiver), on
# job slots of their own, apart from the lanes' UDT_WORKER_MAX_JOBS.
WEBHOOK_MAX_JOBS: int = _int("UDT_WEBHOOK_MAX_JOBS", 10)
# How long one webhook attempt may take, end to end; a worker that dies mid-attempt holds the
# delivery for three times this (models/webhook_deliveries.py) before another sends it.
WEBHOOK_TIMEOUT_SECONDS: float = _float("UDT_WEBHOOK_TIMEOUT_SECONDS", 10)

# Prometheus metrics: on (default) or off; off means no /metrics anywhere.
METRICS_ENABLED: bool = os.environ.get("UDT_METRICS", "on").strip().lower() not in ("off", "0", "false", "no")
# A worker serves /metrics on this port (default 9464); the API on its own port unless this is set.
METRICS_PORT: int | None = int(os.environ["UDT_METRICS_PORT"]) if os.environ.get("UDT_METRICS_PORT") else None
METRICS_HOST: str = os.environ.get("UDT_METRICS_HOST", "0.0.0.0")
# Logs: json, or text (the default: what `udt dev` shows on a terminal).
LOG_FORMAT: str = os.environ.get("UDT_LOG_FORMAT", "text").strip().lower()
LOG_LEVEL: str = os.environ.get("UDT_LOG_LEVEL", "INFO").strip().upper()

MODEL_MODULES = ["models.tenancy", "models.userdata", "models.transfers", "models.idempotency", "models.journal", "models.webhooks"]


# What this process is (api, worker, dev, cli), set by its `udt` command: PostgreSQL
# shows it as application_name `udt-<role>` in pg_stat_activity.
ROLE: str = "cli"


def _connection(url: str) -> str | dict:
    """PostgreSQL connections name their process kind and drop dead clients' statements;
    tortoise's asyncpg client is ours (models/asyncpg_client.py: transactions that
    survive the database going away)."""
    if not url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        return url
    from tortoise.backends.base.config_generator import expand_db_url

    config = expand_db_url(url)
    config["engine"] = "models.asyncpg_client"
    # A connection per lane in flight, plus the lease renewals and the reconciler beside
    # them: a renewal that waits for a connection lets its lease run out.
    config["credentials"].setdefault("maxsize", WORKER_MAX_JOBS + 5)
    # Every statement of ours reads or moves one page's or one pair's rows: JIT compiling
    # (tens of ms of CPU, chosen when an estimate runs high, as right after a bulk moved
    # the rows) and parallel workers (processes started per statement) cost more than they save.
    config["credentials"]["server_settings"] = {
        "application_name": f"udt-{ROLE}",
        "client_connection_check_interval": str(PG_CONNECTION_CHECK_MS),
        "jit": "off",
        "max_parallel_workers_per_gather": "0",
    }
    config["credentials"]["reset"] = _keep_session
    return config


async def _keep_session(connection: object) -> None:
    """asyncpg's pool `reset`: a connection goes back to the pool as it is.

    Nothing here changes a session (no SET, LISTEN, advisory lock or cursor outside a
    transaction), and asyncpg still rolls back a transaction left open. Its default reset
    (`RESET ALL`, `UNLISTEN *`, ...) is one more round trip per statement, since tortoise
    takes a connection per statement: a wait for PostgreSQL in every query of a request.
    """


def tortoise_config(database_url: str | None = None) -> dict:
    return {
        "connections": {"default": _connection(database_url or DATABASE_URL)},
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
