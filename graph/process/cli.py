"""The `udt` command: run, migrate, seed, issue tokens, export the schema."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from models import settings
from models.tenancy import DEFAULT_TOKEN_LIFETIME
from models.transfers import TransferStatus


def _run(coro_factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run one async command with the database open."""
    from models.db import close_db, open_db

    async def main() -> Any:
        await open_db()
        try:
            return await coro_factory()
        finally:
            await close_db()

    return asyncio.run(main())


async def apply_migrations() -> None:
    """Apply the checked-in migrations (tortoise-orm's own migration system).

    In a context of its own, so that the process's ORM state is left as it was.
    """
    from tortoise.context import TortoiseContext
    from tortoise.migrations.api import migrate

    async with TortoiseContext():
        await migrate(config=settings.tortoise_config())


def _migrate(command: str) -> None:
    """Apply the migrations, or stop with what the database's administrator must do first."""
    from models.db import DatabaseNotReady

    try:
        asyncio.run(apply_migrations())
    except DatabaseNotReady as problem:
        sys.exit(f"udt {command}: {problem}")


def cmd_migrate(args: argparse.Namespace) -> None:
    _migrate("migrate")
    print("migrations applied")


def cmd_seed(args: argparse.Namespace) -> None:
    from models import seed

    if args.demo:
        created = _run(seed.seed_demo)
        print("demo data loaded" if created else "demo data already present")
    else:
        if not args.tenant:
            sys.exit("udt seed --synthetic needs --tenant SLUG")
        if 0 < args.records_per_user < seed.MIN_RECORDS_PER_USER:
            sys.exit(
                f"udt seed --synthetic: --records-per-user is 0 (people only) or at least {seed.MIN_RECORDS_PER_USER}: "
                f"records are spread evenly over the {len(seed.DATA_TYPES)} data types"
            )
        _run(lambda: seed.seed_synthetic(args.tenant, args.users, args.records_per_user))
        print(f"tenant {args.tenant}: {args.users} users, ~{args.records_per_user} records each")


_DURATION = re.compile(r"([1-9][0-9]{0,5})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def token_lifetime(text: str) -> timedelta | None:
    """`30d`, `12h`, `90m`, or `never` (None)."""
    if text.strip().lower() == "never":
        return None
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 90m or never")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


async def _issue_token(tenant: str, username: str, lifetime: timedelta | None = DEFAULT_TOKEN_LIFETIME) -> str | None:
    from models.tenancy import ApiToken, User

    user = await User.get_or_none(tenant__slug=tenant, username=username)
    return await ApiToken.issue(user, lifetime) if user else None


def cmd_token(args: argparse.Namespace) -> None:
    token = _run(lambda: _issue_token(args.tenant, args.username, args.expires_in))
    if token is None:
        sys.exit(f"no user {args.username!r} in tenant {args.tenant!r}")
    ends = "never expires" if args.expires_in is None else "expires " + _when(datetime.now(timezone.utc) + args.expires_in, "")
    print(f"token for {args.username} in {args.tenant}, {ends} (shown once, store it now):")
    print(token)


def _when(value: datetime | None, empty: str) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else empty


async def _tokens(tenant: str) -> list[list[str]] | None:
    from models.tenancy import ApiToken, Tenant

    if not await Tenant.exists(slug=tenant):
        return None
    now = datetime.now(timezone.utc)
    rows = []
    for t in await ApiToken.filter(user__tenant__slug=tenant).select_related("user").order_by("id"):
        status = "revoked" if t.revoked_at else "expired" if t.expires_at and t.expires_at <= now else "live"
        rows.append([
            str(t.id), t.user.username, _when(t.created_at, "-"), _when(t.expires_at, "never"),
            _when(t.last_used_at, "never"), status,
        ])
    return rows


def cmd_token_list(args: argparse.Namespace) -> None:
    rows = _run(lambda: _tokens(args.tenant))
    if rows is None:
        sys.exit(f"no tenant {args.tenant!r}")
    _table([["ID", "USER", "CREATED", "EXPIRES", "LAST USED", "STATUS"], *rows])


def cmd_token_revoke(args: argparse.Namespace) -> None:
    from models.tenancy import ApiToken

    if not _run(lambda: ApiToken.revoke(args.id)):
        sys.exit(f"no live token {args.id} (unknown, or revoked already)")
    print(f"token {args.id} revoked: it no longer authenticates, and its open subscriptions end within a minute")


def _format(rows: list[list[str]]) -> list[str]:
    """Plain columns, as wide as their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _table(rows: list[list[str]]) -> None:
    print("\n".join(_format(rows)))


async def _transfers(tenant: str | None, status: str | None, limit: int) -> list[list[str]] | None:
    from models.tenancy import Tenant
    from models.transfers import Transfer

    if tenant is not None and not await Tenant.exists(slug=tenant):
        return None
    query = Transfer.all().select_related("tenant", "requested_by")
    if tenant is not None:
        query = query.filter(tenant__slug=tenant)
    if status is not None:
        query = query.filter(status=status)
    return [
        [
            str(t.id), t.tenant.slug, t.kind.value, t.status.value, f"{t.processed_pairs}/{t.total_pairs}",
            str(t.succeeded_pairs), str(t.failed_pairs), t.requested_by.username if t.requested_by else "-",
            _when(t.created_at, "-"), _when(t.finished_at, "-"),
        ]
        for t in await query.order_by("-id").limit(limit)
    ]


def cmd_transfers_list(args: argparse.Namespace) -> None:
    rows = _run(lambda: _transfers(args.tenant, args.status, args.limit))
    if rows is None:
        sys.exit(f"no tenant {args.tenant!r}")
    header = ["ID", "TENANT", "KIND", "STATUS", "DONE/PAIRS", "OK", "FAILED", "BY", "CREATED", "FINISHED"]
    _table([header, *rows])


def transfer_pk(text: str) -> int:
    """A transfer's number (as `list` shows it) or its GraphQL ID."""
    from graph.core.relay import pk_of

    found = int(text) if text.isdigit() else pk_of(text, "Transfer")
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a transfer number nor a transfer's GraphQL ID")
    return found


async def _transfer(pk: int) -> list[str] | None:
    from graph.core.relay import to_global_id
    from models.transfers import ItemStatus, Transfer, TransferItem

    t = await Transfer.get_or_none(id=pk).select_related("tenant", "requested_by", "upload")
    if t is None:
        return None
    lines = [
        f"transfer {t.id} ({to_global_id('Transfer', t.id)})",
        f"tenant:        {t.tenant.slug}",
        f"kind:          {t.kind.value}",
        f"status:        {t.status.value}",
        f"requested by:  {t.requested_by.username if t.requested_by else '-'}",
        f"upload:        {f'{t.upload.id} ({t.upload.filename})' if t.upload else '-'}",
        f"retry of:      {t.retry_of_id or '-'}",
        f"revert of:     {t.revert_of_id or '-'}",
        f"data types:    {'all' if t.data_types is None else ', '.join(t.data_types)}",
        f"created:       {_when(t.created_at, '-')}",
        f"started:       {_when(t.started_at, '-')}",
        f"finished:      {_when(t.finished_at, '-')}",
        f"pairs:         {t.total_pairs} total, {t.processed_pairs} processed, "
        f"{t.succeeded_pairs} succeeded, {t.failed_pairs} failed",
        f"message:       {t.message or '-'}",
    ]
    failed = await (
        TransferItem.filter(transfer_id=t.id, status=ItemStatus.FAILED).select_related("source", "target").order_by("position")
    )
    if not failed:
        return [*lines, "", "no failed pairs"]
    rows = [["ROW", "SOURCE", "TARGET", "CODE", "MESSAGE"]]
    rows += [
        [str(i.row_number or "-"), str(i.source.user_id), str(i.target.user_id), i.error_code or "-", i.error_message or ""]
        for i in failed
    ]
    return [*lines, "", f"failed pairs ({len(failed)}):", *_format(rows)]


def cmd_transfers_show(args: argparse.Namespace) -> None:
    lines = _run(lambda: _transfer(args.id))
    if lines is None:
        sys.exit(f"no transfer {args.id}")
    print("\n".join(lines))


async def _webhook_endpoints(tenant: str | None) -> list[list[str]]:
    from models.webhooks import WebhookEndpoint

    query = WebhookEndpoint.all().select_related("tenant")
    if tenant is not None:
        query = query.filter(tenant__slug=tenant)
    return [
        [
            str(e.id), e.tenant.slug, e.url, ",".join(e.events), "yes" if e.enabled else "no",
            e.disabled_reason or "-", _when(e.created_at, "-"),
        ]
        for e in await query.order_by("id")
    ]


def cmd_webhooks_list(args: argparse.Namespace) -> None:
    rows = _run(lambda: _webhook_endpoints(args.tenant))
    _table([["ID", "TENANT", "URL", "EVENTS", "ENABLED", "DISABLED BECAUSE", "CREATED"], *rows])


async def _webhook_deliveries(endpoint: int | None, status: str | None, limit: int) -> list[list[str]]:
    from models.webhook_deliveries import delivery_id
    from models.webhooks import WebhookDelivery

    query = WebhookDelivery.all()
    if endpoint is not None:
        query = query.filter(endpoint_id=endpoint)
    if status is not None:
        query = query.filter(status=status)
    return [
        [
            str(d.id), delivery_id(d.id), str(d.endpoint_id), d.event, str(d.transfer_id or "-"), d.status.value,
            str(d.attempts), str(d.last_response_status or "-"), _when(d.next_attempt_at, "-"),
            _when(d.created_at, "-"), d.last_error or "",
        ]
        for d in await query.order_by("-id").limit(limit)
    ]


def cmd_webhooks_deliveries(args: argparse.Namespace) -> None:
    rows = _run(lambda: _webhook_deliveries(args.endpoint, args.status, args.limit))
    header = ["ID", "WEBHOOK-ID", "ENDPOINT", "EVENT", "TRANSFER", "STATUS", "ATTEMPTS", "HTTP", "NEXT", "CREATED", "LAST ERROR"]
    _table([header, *rows])


def cmd_export_schema(args: argparse.Namespace) -> None:
    from graph.api.schema import schema

    sys.stdout.write(schema.as_str() + "\n")


def _serve(host: str, port: int, run_worker: bool) -> None:
    import uvicorn

    from graph.live.websocket import UVICORN
    from graph.server.app import create_app

    from jobs import metrics

    if settings.METRICS_ENABLED and settings.METRICS_PORT is not None:
        metrics.serve(settings.METRICS_PORT)  # else the app serves /metrics on its own port
    # log_config=None: uvicorn's lines go through our handler too (JSON, request IDs).
    uvicorn.run(
        create_app(run_worker=run_worker), host=host, port=port, log_level="info", log_config=None, **UVICORN
    )


def _require_redis(command: str) -> None:
    """API instances and workers meet only through a shared Redis: a private one would strand jobs."""
    if not settings.REDIS_URL:
        sys.exit(f"udt {command} needs REDIS_URL (e.g. redis://127.0.0.1:6379/0); `udt dev` runs everything in one process")


def _require_sound_oidc(command: str) -> None:
    """An issuer without an audience would accept any token the provider issues, for any API."""
    from graph.auth.oidc import configuration_problem

    if problem := configuration_problem():
        sys.exit(f"udt {command} cannot start: {problem}")


MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
MIN_KEY_CHARS = 32
DEV_KEY_FILE = "secret_key"


def _require_secret_key(command: str) -> None:
    """Download links are signed with UDT_SECRET_KEY, and webhook secrets sealed with it: a key each
    process made up would open none of the others' links, and no worker could sign a webhook."""
    if not settings.SECRET_KEYS:
        sys.exit(
            f"udt {command} needs UDT_SECRET_KEY, the key that signs download links and seals webhook secrets "
            f"(the same on every API instance and worker). Make one with: {MAKE_A_KEY}"
        )
    if any(len(key) < MIN_KEY_CHARS for key in settings.SECRET_KEYS):
        sys.exit(
            f"udt {command}: every key in UDT_SECRET_KEY needs at least {MIN_KEY_CHARS} characters. "
            f"Make one with: {MAKE_A_KEY}"
        )


def _dev_secret_key() -> None:
    """`udt dev` without UDT_SECRET_KEY: a key of its own, made on the first run and kept under the data
    directory (readable by its owner only), so that links it gave out still open after a restart."""
    import secrets
    from pathlib import Path

    if settings.SECRET_KEYS:
        return
    path = Path(settings.DATA_DIR) / DEV_KEY_FILE
    key = path.read_text().strip() if path.exists() else ""
    if len(key) < MIN_KEY_CHARS:  # the first run (or a file left empty)
        key = secrets.token_urlsafe(32)
        path.touch(mode=0o600)
        path.chmod(0o600)  # before the key is in it, whatever the umask
        path.write_text(key + "\n")
    settings.SECRET_KEYS = [key]


def cmd_serve(args: argparse.Namespace) -> None:
    _require_sound_oidc("serve")
    _require_redis("serve")
    _require_secret_key("serve")
    settings.ROLE = "api"
    _serve(args.host, args.port, run_worker=False)


def _lower_priority(niceness: int) -> None:
    """Run at `niceness`, or leave a process that already runs lower (a worker started
    under `nice`) as it is: only raising it needs no privilege."""
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, min(niceness, 19))


def cmd_worker(args: argparse.Namespace) -> None:
    from jobs import metrics
    from jobs.worker import make_worker, run

    _require_sound_oidc("worker")
    _require_redis("worker")
    _require_secret_key("worker")
    settings.ROLE = "worker"
    _lower_priority(settings.WORKER_NICE)
    if settings.METRICS_ENABLED:
        metrics.serve(settings.METRICS_PORT or metrics.WORKER_DEFAULT_PORT)
    run(make_worker())


def cmd_dev(args: argparse.Namespace) -> None:
    """Everything in one process: SQLite, a private Redis, the worker, demo data."""
    from jobs import connection

    _require_sound_oidc("dev")
    os.makedirs(settings.DATA_DIR, exist_ok=True)
    settings.ROLE = "dev"
    _dev_secret_key()
    settings.WEBHOOK_ALLOW_PRIVATE = True  # receivers on this machine, over http
    connection.redis_url()  # starts the private Redis when REDIS_URL is unset
    # uvicorn re-raises SIGTERM once it has shut down; exit through `finally` then,
    # so that the private Redis stops with us instead of outliving the process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _dev(args)
    finally:
        connection.stop_embedded_redis()


def _dev(args: argparse.Namespace) -> None:
    from graph.process import logs
    from models import seed

    _migrate("dev")

    async def prepare() -> str | None:
        await seed.seed_demo()
        return await _issue_token("demo", "admin")

    token = _run(prepare)
    base = f"http://{args.host}:{args.port}"
    url = f"{base}/graphql"
    print(
        f"\n  User Data Transfer is starting on {url}\n"
        f"  Open GraphiQL there and set the header (Headers tab):\n"
        f'    {{"Authorization": "Bearer {token}"}}\n'
        f"  The console: {base}/console\n"
        # The token in the fragment, which a browser never sends: the console takes it and clears the address bar.
        f"    signed in as admin by this link: {base}/console#token={quote(token or '', safe='')}\n"
        f"  Database: {logs.masked(settings.DATABASE_URL)}\n  Redis: {logs.masked(settings.REDIS_URL)}\n"
        "  Webhooks may go to http:// and private addresses (UDT_WEBHOOK_ALLOW_PRIVATE=1): development only.\n",
        flush=True,
    )
    _serve(args.host, args.port, run_worker=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="udt", description="User Data Transfer service")
    sub = p.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("dev", cmd_dev, "run everything on embedded defaults (SQLite, private Redis, worker, demo data)"),
        ("serve", cmd_serve, "run the API (any number of instances)"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--host", default="127.0.0.1")
        cmd.add_argument("--port", type=int, default=8000)
        cmd.set_defaults(func=func)
    sub.add_parser("worker", help="run an arq worker (any number)").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    seed_cmd = sub.add_parser("seed", help="load demo or synthetic data")
    kind = seed_cmd.add_mutually_exclusive_group(required=True)
    kind.add_argument("--demo", action="store_true", help="tenants demo and acme (SPEC.md section 9)")
    kind.add_argument("--synthetic", action="store_true", help="a load-test tenant")
    seed_cmd.add_argument("--tenant", help="slug of the synthetic tenant")
    seed_cmd.add_argument("--users", type=int, default=4000)
    seed_cmd.add_argument("--records-per-user", type=int, default=250)
    seed_cmd.set_defaults(func=cmd_seed)
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token; printed alone on the last line")
    create.add_argument("--tenant", required=True)
    create.add_argument("--username", required=True)
    create.add_argument(
        "--expires-in", type=token_lifetime, default=DEFAULT_TOKEN_LIFETIME, metavar="DURATION",
        help="30d, 12h, 90m, or never (default: 90d)",
    )
    create.set_defaults(func=cmd_token)
    listing = token.add_parser("list", help="a tenant's tokens: ID, user, created, expires, last used (no secrets)")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(func=cmd_token_list)
    revoke = token.add_parser("revoke", help="revoke a token at once, by its ID (see token list)")
    revoke.add_argument("id", type=int, metavar="ID")
    revoke.set_defaults(func=cmd_token_revoke)
    transfers = sub.add_parser("transfers", help="transfers, for an operator at a shell").add_subparsers(
        dest="action", required=True
    )
    listing = transfers.add_parser("list", help="transfers, newest first: status, counters, who, when")
    listing.add_argument("--tenant", metavar="SLUG")
    listing.add_argument("--status", type=str.upper, choices=[s.value for s in TransferStatus])
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    listing.set_defaults(func=cmd_transfers_list)
    show = transfers.add_parser("show", help="one transfer: status, counters, message and its failed pairs")
    show.add_argument("id", type=transfer_pk, metavar="ID", help="its number (see list) or its GraphQL ID")
    show.set_defaults(func=cmd_transfers_show)
    hooks = sub.add_parser("webhooks", help="webhook endpoints and deliveries").add_subparsers(dest="action", required=True)
    listing = hooks.add_parser("list", help="webhook endpoints: URL, events, enabled or why not")
    listing.add_argument("--tenant", metavar="SLUG")
    listing.set_defaults(func=cmd_webhooks_list)
    deliveries = hooks.add_parser("deliveries", help="webhook deliveries, newest first: status, attempts, last error")
    deliveries.add_argument("--endpoint", type=int, metavar="ID", help="only this endpoint's (see webhooks list)")
    deliveries.add_argument("--status", type=str.upper, choices=["PENDING", "DELIVERED", "FAILED"])
    deliveries.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    deliveries.set_defaults(func=cmd_webhooks_deliveries)
    sub.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(func=cmd_export_schema)
    return p


def main(argv: list[str] | None = None) -> None:
    from graph.process import logs

    logs.configure()
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
