"""The database goes away under a running bulk transfer: restarted, failed over to
another server at the same address, every connection cut, or away for a while. The
transfer still ends, each pair applied exactly once and none failed for it (an outage
uses up no attempt); work resumes within RESUME_BOUND_SECONDS of the database coming
back; the API answers /readyz 503 while it is away and recovers by itself.

Real processes against a PostgreSQL server of the test's own (tests/processes.py:
initdb into a temporary directory, a free port), so that it can be stopped and cut
without touching the database the other tests share: `udt serve`, and a `udt worker`
whose pairs take a little longer inside their transaction (tests/slow_worker.py), so
that pairs are in flight when the database goes. Beside them, two tests on the suite's
own database force the interleavings behind the report: a BEGIN on a pooled connection
that died unnoticed, and a lane's statement cut between pairs.

Runs in the PostgreSQL run of the suite only (the `postgres` mark): the bulk tests
bring their own database either way, and once is enough. Skipped, saying why, where
no PostgreSQL server programs can be run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tortoise import connections
from tortoise.transactions import in_transaction

from jobs import transfer as transfer_jobs
from models import leases, starting
from models.db import is_unavailable
from models.transfers import Transfer, TransferItem, TransferStatus
from models.userdata import DATA_TYPES
from tests.processes import SLOW_WORKER, PostgresCluster, RedisServer, Service, postgres_bindir, udt, until
from tests.support import Api, World, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

PAIRS = 300
# Work resumes within this of the database coming back (the requirement: 15 s).
RESUME_BOUND_SECONDS = 15
# How long the database stays away in the long outage. The requirement is a minute;
# the suite uses less to keep CI short: UDT_TEST_OUTAGE_SECONDS=60 proves the minute.
OUTAGE_SECONDS = float(os.environ.get("UDT_TEST_OUTAGE_SECONDS", "20"))
# How long the database was down in the report's restart (pg_ctlcluster restart -m fast).
REPORTED_OUTAGE_SECONDS = 2.4
# Applied before the database goes: a third of the bulk, as in the report (pair 85 of 300).
APPLIED_BEFORE = 85

START_BULK = """
mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) {
  transfer { id } userErrors { code message } } }"""


@dataclass
class Stack:
    """`udt serve` and a `udt worker` on a database of their own, holding a tenant of
    2 x `pairs` users (2..2*pairs+1), each with one record of every data type."""

    cluster: PostgresCluster
    api: Api
    token: str
    pairs: int

    async def one(self, query: str, *values: object) -> dict:
        (row,) = await self.cluster.sql(query, *values)
        return row

    async def ready(self) -> tuple[int, dict]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.api.base}/readyz")
        return response.status_code, response.json()

    async def serving(self) -> bool:
        try:
            return (await self.ready())[0] == 200
        except httpx.HTTPError:
            return False


@contextlib.asynccontextmanager
async def service_stack(directory: Path, pairs: int, **env: str) -> AsyncIterator[Stack]:
    """A Stack, its logs in `directory`; `env` is added to the services' environment."""
    cluster = await asyncio.to_thread(PostgresCluster.prepare, free_port())
    redis = RedisServer(free_port(), directory)
    services: list[Service] = []
    try:
        await cluster.start()
        await redis.start()
        env = {
            **os.environ,
            "DATABASE_URL": cluster.url,
            "REDIS_URL": redis.url,
            "UDT_QUEUE_NAME": "udt:outage",
            "UDT_METRICS": "off",  # several workers on this machine: no port to share
            **env,
        }
        await udt(env, "migrate")
        records = str(len(DATA_TYPES))
        await udt(env, "seed", "--synthetic", "--tenant", "outage", "--users", str(2 * pairs), "--records-per-user", records)
        token = (await udt(env, "token", "create", "--tenant", "outage", "--username", "admin")).split()[-1]
        port = free_port()
        serve = (sys.executable, "-m", "graph.process.cli", "serve", "--port", str(port))
        services.append(await Service.start(env, directory / "api.log", *serve))
        services.append(await Service.start(env, directory / "worker.log", sys.executable, str(SLOW_WORKER)))
        stack = Stack(cluster, Api(f"http://127.0.0.1:{port}"), token, pairs)
        await until(stack.serving, 60)
        yield stack
    finally:
        for service in services:
            await service.stop()
        await redis.kill()
        await cluster.remove()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    # Pairs take a little longer inside their transaction: some are in flight when the database goes.
    async with service_stack(tmp_path, PAIRS, SLOW_PAIR_SECONDS="0.05") as found:
        yield found


async def start_bulk(stack: Stack) -> tuple[str, dict[str, int]]:
    """Start the bulk (sources 2..pairs+1, targets after them); its GraphQL ID, and the
    rows of each storage table before it."""
    pairs = stack.pairs
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{s + pairs}\n" for s in range(2, pairs + 2))
    upload = (await stack.api.upload(stack.token, content, "pairs.csv"))["upload"]
    assert (upload["pairCount"], upload["errorCount"]) == (pairs, 0)
    before = await _rows(stack)
    started = (await stack.api(START_BULK, stack.token, id=upload["id"]))["startBulkTransfer"]
    assert started["userErrors"] == []
    return started["transfer"]["id"], before


async def _rows(stack: Stack) -> dict[str, int]:
    row = await stack.one(
        "SELECT (SELECT count(*) FROM owned_record) AS owned, (SELECT count(*) FROM evaluation) AS evaluations, "
        "(SELECT count(*) FROM agent_schedule) AS schedules"
    )
    return dict(row)


async def _applied(stack: Stack, at_least: int) -> bool:
    return (await stack.one("SELECT processed_pairs FROM transfer"))["processed_pairs"] >= at_least


async def take_away(stack: Stack, applied: int, seconds: float, failover: bool = False) -> tuple[float, float]:
    """Stop the database once `applied` pairs are (fast: every backend is ended, pairs in
    flight among them), see /readyz say so for `seconds`, start it again (with `failover`,
    another server with its data takes its address); returns when it went and when it
    was back (wall clock, as the workers' event times)."""
    await until(lambda: _applied(stack, applied), 60)
    went = time.time()
    await stack.cluster.stop()
    await until(lambda: _unready(stack), 10)
    await assert_requests_are_told_to_retry(stack)
    while time.time() - went < seconds:
        assert await _unready(stack)
        await asyncio.sleep(1)
    if failover:
        await stack.cluster.replace()
    await stack.cluster.start()
    return went, time.time()


async def _pair_times(stack: Stack) -> list[float]:
    """When each pair's outcome was recorded, in its transaction, just before its commit."""
    rows = await stack.cluster.sql(
        "SELECT data->>'at' AS at FROM transfer_event WHERE data->>'type' = 'ITEM_SUCCEEDED'"
    )
    return sorted(datetime.fromisoformat(row["at"]).timestamp() for row in rows)


async def resumed_after(stack: Stack, went: float, back: float) -> float:
    """Seconds from the database's return to the first pair committed after it; the
    bulk was mid-way when it went."""
    times = await _pair_times(stack)
    assert 0 < sum(t < went for t in times) < stack.pairs
    resumed = min(t for t in times if t > back) - back
    assert resumed <= RESUME_BOUND_SECONDS, f"work resumed {resumed:.1f} s after the database came back"
    return resumed


async def assert_requests_are_told_to_retry(stack: Stack) -> None:
    """While the database is away a request is SERVICE_UNAVAILABLE, never INTERNAL_ERROR: a POST
    or a GET query, at the edge (its token cannot be checked), with 503 and Retry-After."""
    headers = {"Authorization": f"Bearer {stack.token}"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        post = await client.post(f"{stack.api.base}/graphql", json={"query": "{ viewer { canTransfer } }"})
        get = await client.get(f"{stack.api.base}/graphql", params={"query": "{ viewer { canTransfer } }"})
    for answer in (post, get):
        assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE" and "database" in error["message"], error


async def _unready(stack: Stack) -> bool:
    status, body = await stack.ready()
    return status == 503 and body["database"] == "error"


async def assert_every_pair_applied_once(stack: Stack, gid: str, before: dict[str, int], attempts: int) -> None:
    """`attempts`: the most any pair may have used."""
    done = await stack.api.wait_finished(stack.token, gid, timeout=120)  # through the API: it recovered
    assert (done["status"], done["processedPairs"], done["succeededPairs"], done["failedPairs"]) == (
        "SUCCEEDED", stack.pairs, stack.pairs, 0
    )
    items = await stack.cluster.sql("SELECT status, attempts, moved, overwritten FROM transfer_item")
    assert len(items) == stack.pairs and {item["status"] for item in items} == {"SUCCEEDED"}
    assert max(item["attempts"] for item in items) <= attempts
    events = await stack.cluster.sql(
        "SELECT count(*) AS n, count(DISTINCT data->>'source_user_id') AS sources FROM transfer_event "
        "WHERE data->>'type' = 'ITEM_SUCCEEDED'"
    )
    assert (events[0]["n"], events[0]["sources"]) == (stack.pairs, stack.pairs)  # each pair's event recorded once
    owned_by_sources = await stack.one(
        "SELECT (SELECT count(*) FROM owned_record WHERE owner_id = ANY($1::int[])) "
        "+ (SELECT count(*) FROM evaluation WHERE evaluator_id = ANY($1::int[])) "
        "+ (SELECT count(*) FROM agent_schedule WHERE user_id = ANY($1::int[])) AS n",
        [row["id"] for row in await stack.cluster.sql("SELECT source_id AS id FROM transfer_item")],
    )
    assert owned_by_sources["n"] == 0  # every source's data moved
    # Nothing deleted but what the pairs overwrote, each once.
    overwritten = sum(sum(json.loads(item["overwritten"]).values()) for item in items)
    after = await _rows(stack)
    assert sum(before.values()) - sum(after.values()) == overwritten


async def _ready(stack: Stack) -> bool:
    return (await stack.ready())[0] == 200


@pytest.mark.parametrize("failover", [False, True], ids=["restart", "failover"])
async def test_a_bulk_survives_a_database_restart_and_every_pair_is_applied_once(stack: Stack, failover: bool) -> None:
    gid, before = await start_bulk(stack)
    went, back = await take_away(stack, APPLIED_BEFORE, REPORTED_OUTAGE_SECONDS, failover)
    await until(lambda: _ready(stack), RESUME_BOUND_SECONDS)
    await assert_every_pair_applied_once(stack, gid, before, attempts=1)  # the outage used up none
    await resumed_after(stack, went, back)


async def test_a_bulk_survives_every_connection_of_the_service_being_cut(stack: Stack) -> None:
    gid, before = await start_bulk(stack)
    cut = 0
    for applied in (APPLIED_BEFORE, 2 * APPLIED_BEFORE):
        await until(lambda a=applied: _applied(stack, a), 60)
        went = time.time()
        rows = await stack.cluster.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name IN ('udt-api', 'udt-worker')"
        )
        cut += len(rows)
    assert cut >= 2  # the API's and the worker's, pairs in flight among them
    # The database stayed up: a pair whose connection was cut under it counts that attempt.
    await assert_every_pair_applied_once(stack, gid, before, attempts=2)
    assert await _ready(stack)
    await resumed_after(stack, went, went)


async def test_a_bulk_waits_for_a_database_that_stays_away_and_resumes_once_it_is_back(stack: Stack) -> None:
    gid, before = await start_bulk(stack)
    went, back = await take_away(stack, APPLIED_BEFORE, OUTAGE_SECONDS)
    await until(lambda: _ready(stack), RESUME_BOUND_SECONDS)
    await assert_every_pair_applied_once(stack, gid, before, attempts=1)
    await resumed_after(stack, went, back)
    # No lane was taken from its worker, so no attempt was spent on that either.
    lanes = await stack.cluster.sql("SELECT generation FROM transfer_lane")
    assert {lane["generation"] for lane in lanes} == {1}


def _cut_this_process_connections(bindir: Path, database: str) -> None:
    """End this process's idle connections, and the one of its open transaction, at once.
    Blocking on purpose: the event loop reads nothing meanwhile, so the pool still takes
    them for alive when the next statement goes out on one of them."""
    subprocess.run(
        [str(bindir / "psql"), database, "-c",
         "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = current_database() "
         "AND application_name = 'udt-cli' AND state IN ('idle', 'idle in transaction')"],
        check=True, capture_output=True,
    )


@pytest.mark.parametrize("fails", ["begin", "commit"])
async def test_a_transaction_whose_connection_died_leaves_the_next_one_a_live_connection(
    database: str, fails: str
) -> None:
    """The root of the report: a transaction whose connection died unnoticed (in the pool,
    or under it) fails; the task's next transaction must get a live connection, not the
    dead one's client ("connection has been released back to the pool", for every retry
    after it)."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("needs psql, to cut this process's connections where its event loop cannot notice")
    await connections.get("default").execute_query("SELECT 1")  # an idle connection in the pool
    with pytest.raises(Exception) as failed:
        if fails == "begin":
            _cut_this_process_connections(bindir, database)
        async with in_transaction() as db:
            await db.execute_query("SELECT 1")
            if fails == "commit":
                _cut_this_process_connections(bindir, database)
    assert is_unavailable(failed.value)
    async with in_transaction() as db:
        assert await db.execute_query_dict("SELECT 1 AS one") == [{"one": 1}]


async def test_a_lane_whose_connection_is_cut_between_pairs_carries_on_in_the_same_job(
    world: World, pool, monkeypatch
) -> None:
    """Not only a pair's transaction: any statement of a lane's job may lose its connection.
    The job carries on from what the database says (its lease is its own still), instead of
    failing and leaving its lane to a takeover that would count an attempt."""
    from models import settings

    monkeypatch.setattr(settings, "QUEUE_NAME", f"udt:test-outage:{world.tenant.id}")  # no worker takes it
    await world.give(20, "CCR", 2)
    transfer, _ = await starting.start_single(world.users[1], 20, 21)
    (lane,) = await leases.of_transfer(transfer.id)
    db = connections.get("default")
    # The job's statement that starts the transfer ends its own connection, once (a
    # sequence: its transaction rolls back, a sequence does not).
    await db.execute_script(
        "CREATE SEQUENCE udt_test_cut_once; "
        "CREATE FUNCTION udt_test_cut() RETURNS trigger AS $$ BEGIN "
        "IF nextval('udt_test_cut_once') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql; "
        f"CREATE TRIGGER udt_test_cut BEFORE UPDATE ON transfer FOR EACH ROW WHEN (OLD.id = {transfer.id} "
        "AND OLD.status = 'QUEUED' AND NEW.status = 'RUNNING') EXECUTE FUNCTION udt_test_cut()"
    )
    try:
        assert await transfer_jobs.run_lane({"redis": pool}, transfer.id, lane.lane, lane.generation) == 1
        cuts = await db.execute_query_dict("SELECT last_value FROM udt_test_cut_once")
    finally:
        await db.execute_script(
            "DROP TRIGGER udt_test_cut ON transfer; DROP FUNCTION udt_test_cut(); DROP SEQUENCE udt_test_cut_once"
        )
    assert cuts == [{"last_value": 2}]  # cut the first time, let through the second
    done = await Transfer.get(id=transfer.id)
    assert (done.status, done.succeeded_pairs) == (TransferStatus.SUCCEEDED, 1)
    assert (await TransferItem.get(transfer_id=transfer.id)).attempts == 1
    assert await leases.of_transfer(transfer.id) == []  # finished by this job, never taken over
    assert await world.owned(21) == {"CCR": 2}
