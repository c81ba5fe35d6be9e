"""Logs: one line per event, JSON on request, carrying the IDs that let one grep follow a transfer.

Real `udt serve` and `udt worker` processes write the logs read here.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import graph.api.users
from graph.process import logs
from models import settings
from models.transfers import Transfer, TransferItem
from tests.processes import Workers, finished, until, worker_env
from tests.support import Api, World, free_port
from tests.test_cli import UDT

UPLOAD = "mutation ($file: Upload!) { uploadBulkTransferFile(file: $file) { upload { id } userErrors { code } } }"
START_BULK = "mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) { transfer { id } userErrors { code } } }"


async def post(base: str, token: str | None, request_id: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{base}/graphql", headers=headers, **kwargs)


async def test_a_callers_x_request_id_is_returned_and_a_fresh_one_is_made_otherwise(api: Api, world: World) -> None:
    query = {"json": {"query": "{ viewer { canTransfer } }"}}
    given = await post(api.base, world.admin, "0b9c1e9e-trace.42", **query)
    assert given.headers["X-Request-ID"] == "0b9c1e9e-trace.42"
    fresh = [(await post(api.base, world.admin, **query)).headers["X-Request-ID"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", r) for r in fresh) and fresh[0] != fresh[1]
    for junk in ("has spaces in it", "x" * 200, "semi;colon"):  # free text never reaches the log
        replaced = (await post(api.base, world.admin, junk, **query)).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)


@pytest.fixture
def broken_views(monkeypatch: pytest.MonkeyPatch) -> None:
    """`{ views }` fails inside the server with an internal error, which the API logs."""

    async def broken(operator: Any) -> list:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(graph.api.users, "visible_views", broken)


async def test_an_internal_error_names_the_request_id_of_the_header(api: Api, world: World, broken_views: None) -> None:
    response = await post(api.base, world.admin, "support-ticket-1234", json={"query": "{ views { name } }"})
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_ERROR", "requestId": "support-ticket-1234"}
    assert response.headers["X-Request-ID"] == "support-ticket-1234"


async def _logged(request: Any) -> list[dict]:
    """The API's JSON log lines while `request()` runs, in this process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        logs.configure("json", "INFO")
        root.handlers[0].setStream(out)
        await request()
    finally:
        root.handlers = handlers
        root.setLevel(level)
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_every_log_line_of_a_request_names_its_tenant_and_operator(api: Api, world: World, broken_views: None) -> None:
    lines = await _logged(lambda: post(api.base, world.admin, "named-in-log-1", json={"query": "{ views { name } }"}))
    mine = [line for line in lines if line.get("request_id") == "named-in-log-1"]
    assert mine, lines
    assert {(line.get("tenant"), line.get("operator")) for line in mine} == {(world.tenant.slug, "admin")}


async def test_every_log_line_of_a_websocket_operation_names_its_tenant_and_operator(api: Api, world: World, broken_views: None) -> None:
    """The operator of a WebSocket is found from its connection_init, and named from then on."""
    from gql import gql
    from gql.transport.exceptions import TransportQueryError

    async def query() -> None:
        async with api.ws(world.lead) as session:
            with contextlib.suppress(TransportQueryError):  # the internal error, answered as such
                await session.execute(gql("{ views { name } }"))

    lines = await _logged(query)
    mine = [line for line in lines if "secret internal detail" in json.dumps(line)]
    assert mine, lines
    assert {(line.get("tenant"), line.get("operator")) for line in mine} == {(world.tenant.slug, "lead")}


@contextlib.asynccontextmanager
async def udt_serve(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """`udt serve` on a free port, its output in `log`; stopped with SIGTERM."""
    port = free_port()
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(UDT, "serve", "--port", str(port), env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        async def ready() -> bool:
            assert process.returncode is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"{base}/readyz")).status_code == 200
            return False

        await until(ready, 60)
        yield base
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()


def json_lines(path: Path) -> list[dict]:
    """Every line of a log: each must be one JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_json_logs_follow_a_bulk_transfer_from_upload_to_its_last_pair_across_api_and_worker(
    world: World, database: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"udt:test-logging:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    env = worker_env(database, redis_url, queue, UDT_LOG_FORMAT="json", UDT_METRICS="off", UDT_LOG_LEVEL="INFO")
    workers = Workers(env, tmp_path / "pairs")
    for source in (10, 11):
        await world.give(source, "CCR", 2)
    try:
        await workers.start()
        async with udt_serve(env, tmp_path / "api.log") as base:
            content = b"Source User ID,Target User ID\n10,20\n11,21\n"
            uploaded = await post(
                base, world.admin, "upload-trace-1",
                data={"operations": json.dumps({"query": UPLOAD, "variables": {"file": None}}), "map": '{"0": ["variables.file"]}'},
                files={"0": ("people.csv", content, "text/csv")},
            )
            upload_id = uploaded.json()["data"]["uploadBulkTransferFile"]["upload"]["id"]
            started = await post(base, world.admin, "start-trace-1", json={"query": START_BULK, "variables": {"id": upload_id}})
            assert started.json()["data"]["startBulkTransfer"]["userErrors"] == []
            transfer = await Transfer.filter(upload__tenant_id=world.tenant.id).get()
            refused = {"query": '{ viewer { canTransfer } users(filter: {search: "\\u0001"}) { totalCount } }'}
            assert "INVALID_SEARCH" in (await post(base, world.admin, "refused-1", json=refused)).text

            await until(lambda: finished(transfer), 60)
            # Its lines follow the commits: stopping the worker at once may cancel a job before them.
            await until(lambda: (text := (tmp_path / "worker-0.log").read_text()).count('"pair applied"') == 2 and '"transfer finished"' in text, 30)
    finally:
        await workers.stop_all()

    api_lines = json_lines(tmp_path / "api.log")
    worker_lines = json_lines(tmp_path / "worker-0.log")
    who = {"tenant": world.tenant.slug, "operator": "admin", "upload_id": transfer.upload_id}
    (upload_line,) = [line for line in api_lines if line["event"] == "upload checked"]
    assert upload_line.items() >= {**who, "request_id": "upload-trace-1", "pairs": 2}.items()
    (start_line,) = [line for line in api_lines if line["event"] == "transfer started"]
    assert start_line.items() >= {**who, "request_id": "start-trace-1", "transfer_id": transfer.id, "kind": "BULK"}.items()
    # A caller's mistake is logged in the request's own task: it names the operator too.
    (refusal,) = [line for line in api_lines if line["event"].startswith("INVALID_SEARCH")]
    assert refusal.items() >= {"request_id": "refused-1", "operator": "admin", "tenant": world.tenant.slug}.items()
    access = [line for line in api_lines if line.get("logger") == "uvicorn.access" and line.get("request_id") == "start-trace-1"]
    assert len(access) == 1 and access[0]["transfer_id"] == transfer.id

    items = await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True)
    applied = [line for line in worker_lines if line["event"] == "pair applied"]
    assert sorted(line["item_id"] for line in applied) == sorted(items)
    for line in applied:
        assert line.items() >= {**who, "transfer_id": transfer.id, "level": "info", "records_moved": 2}.items()
    (end_line,) = [line for line in worker_lines if line["event"] == "transfer finished"]
    assert end_line.items() >= {**who, "transfer_id": transfer.id, "status": "SUCCEEDED"}.items()
    # One grep, across both processes, follows it from its upload to its end.
    followed = [line["event"] for line in api_lines + worker_lines if line.get("upload_id") == transfer.upload_id]
    assert {"upload checked", "transfer started", "pair applied", "transfer finished"} <= set(followed)


async def test_plain_text_logs_by_default_carry_the_same_ids_as_key_value_pairs(
    world: World, database: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import bulk
    from tests.processes import enqueue

    queue = f"udt:test-logging-text:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    env = {k: v for k, v in worker_env(database, redis_url, queue, UDT_METRICS="off").items() if k != "UDT_LOG_FORMAT"}
    workers = Workers({**env, "UDT_LOG_LEVEL": "INFO"}, tmp_path / "pairs")
    await world.stock(10)
    transfer, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "f.csv", b"Source User ID,Target User ID\n10,20\n"))
    (item_id,) = await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True)
    log = tmp_path / "worker-0.log"
    try:
        await workers.start()
        await enqueue(transfer)

        await until(lambda: finished(transfer), 60)
        # The line follows the commit: stopping the worker at once may cancel its job before it.
        await until(lambda: "pair applied" in log.read_text(), 30)
    finally:
        await workers.stop_all()
    (line,) = [line for line in log.read_text().splitlines() if "pair applied" in line]
    assert not line.startswith("{")
    for pair in (f"item_id={item_id}", f"transfer_id={transfer.id}", f"tenant={world.tenant.slug}", "operator=admin"):
        assert pair in line.split(), line


TOKEN = "udt_" + "T0kenOfAnOperat0r-" * 2 + "abcdefg"
PASSWORD = "s3cret-of-the-database"


def connect_with_secrets() -> None:
    """Fails with a token and a password in its local variables, as asyncpg's connect and a resolver do."""
    token = TOKEN  # noqa: F841 - a local variable that a "pretty" traceback would print
    dsn = f"postgres://udt:{PASSWORD}@db.internal:5432/udt"  # noqa: F841
    raise ConnectionRefusedError("the database is away")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_logged_traceback_never_shows_local_variables_so_never_a_token_or_a_password(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With Rich installed (the test extras have it), structlog's default traceback prints every frame's locals.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # put back after configure replaces them
    monkeypatch.setattr(root, "level", root.level)
    logs.configure(fmt, "INFO")
    output = io.StringIO()
    root.handlers[0].setStream(output)  # type: ignore[attr-defined]
    try:
        connect_with_secrets()
    except ConnectionRefusedError:
        logging.getLogger("asyncpg.pool").warning("Failed to restore the pool connection floor; retrying", exc_info=True)
    text = output.getvalue()
    assert "connect_with_secrets" in text and "the database is away" in text  # the traceback is there
    assert TOKEN not in text and PASSWORD not in text


async def test_an_outgoing_requests_url_is_never_logged_since_a_webhook_url_may_hold_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.getLogger("httpx").level)
    logs.configure("json", "DEBUG")
    output = io.StringIO()
    root.handlers[0].setStream(output)  # type: ignore[attr-defined]
    secret_url = "http://127.0.0.1:9/services/T000/B000/hook-secret-in-path"
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post(secret_url)
    assert "hook-secret-in-path" not in output.getvalue()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://udt:s3cret@db.internal:5432/udt", "postgres://udt:***@db.internal:5432/udt"),
        ("redis://:s3cret@127.0.0.1:6379/8", "redis://:***@127.0.0.1:6379/8"),
        ("redis://127.0.0.1:6379/8", "redis://127.0.0.1:6379/8"),
        ("sqlite:///tmp/udt.sqlite3?busy_timeout=10000", "sqlite:///tmp/udt.sqlite3?busy_timeout=10000"),
    ],
)
def test_a_connection_url_printed_at_start_never_shows_its_password(url: str, shown: str) -> None:
    assert logs.masked(url) == shown


async def test_a_lane_jobs_pair_line_names_its_pair_transfer_upload_tenant_and_operator_and_the_pairs_seconds(
    world: World, pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, as the worker runs a lane's job (the worker-process tests above show the same lines end to end)."""
    from jobs import transfer as transfer_jobs
    from models import bulk, leases

    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-logging-lane:{world.tenant.id}")  # no worker takes it
    await world.stock(10)
    transfer, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "f.csv", b"Source User ID,Target User ID\n10,20\n"))
    (lane,) = await leases.of_transfer(transfer.id)
    (item_id,) = await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True)
    applied = []

    async def run() -> None:
        applied.append(await transfer_jobs.run_lane({"redis": pool}, transfer.id, lane.lane, lane.generation))

    lines = await _logged(run)
    assert applied == [1]
    (line,) = [line for line in lines if line["event"] == "pair applied"]
    who = {"tenant": world.tenant.slug, "operator": "admin", "upload_id": transfer.upload_id}
    assert line.items() >= {**who, "transfer_id": transfer.id, "item_id": item_id}.items()
    assert 0 <= line["seconds"] < 30  # one pair's time, on a loaded machine
