"""Hand-made mutants of the domain lines that matter most: does a test fail for each?

Not part of the suite (it breaks the code on purpose, one line at a time). Run by
hand before resolving an issue, against the PostgreSQL suite, where transactions
really overlap:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/15 \\
        .venv/bin/python -m tests.mutants [NAME ...]

Each mutant replaces one exact piece of a file, runs the tests named for it, and
puts the file back. A mutant that no test kills is reported as SURVIVED: add a
test, or say why the line does not matter. When you change a guarded line, add
its mutants here.

mutmut (tests/mutation.py) measures the suite over the domain modules; this list
keeps what it cannot express: mutants of SQL written in strings (mutmut only
pads a string), of lines outside the modules it mutates (running, starting, transfer_events, db, the
WebSocket, the event batches), mutants that drop one condition of several or
reorder statements, and the concurrency mutants, which only PostgreSQL with a
forced interleaving shows (mutmut runs the suite on SQLite).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    every: bool = False  # replace every occurrence (one condition written twice), not exactly one


RECOVERY = "tests/test_worker_recovery.py"
RECONCILE = "tests/test_reconcile.py"
ENGINE = "tests/test_engine.py"
SINGLE = "tests/test_single_transfer.py"
IDEMPOTENCY = "tests/test_idempotency.py"
REVERT = "tests/test_revert.py"
BATCHES = "tests/test_event_batches.py"
OUTAGE = "tests/test_database_outage.py"
WEBHOOKS = "tests/test_webhook_delivery.py"
SSRF = "tests/test_webhook_ssrf.py"
DELIVERIES = "models/webhook_deliveries.py"
URLS = "models/webhook_urls.py"
_ENDING = (  # how a transaction ends, in models/asyncpg_client.py
    "            if not self.client._finalized:\n"
    "                if exc_type is None:\n"
    "                    await self.client.commit()\n"
    "                elif exc_type is not TransactionManagementError:  # one that already failed cannot roll back\n"
    "                    await self.client.rollback()\n"
)
MUTANTS = [
    Mutant("claim without its PENDING filter", "models/running.py",
           "WHERE id = {q.p(item_id)} AND status = 'PENDING' RETURNING *\"",
           "WHERE id = {q.p(item_id)} RETURNING *\"", (RECOVERY, ENGINE, "tests/test_bulk_transfer.py")),
    Mutant("attempts not limited", "models/running.py",
           "if forced is None and item.attempts > settings.MAX_ATTEMPTS:", "if False:", (ENGINE + "::test_a_pair_that_keeps",)),
    Mutant("attempt limit off by one", "models/running.py",
           "if forced is None and item.attempts > settings.MAX_ATTEMPTS:",
           "if forced is None and item.attempts >= settings.MAX_ATTEMPTS:",
           (ENGINE + "::test_a_pair_that_keeps",)),
    Mutant("a dead worker's attempt is not counted", "models/leases.py",
           "                await _count_lost_attempt(old, db)\n", "", (RECOVERY,)),
    Mutant("attempts that rolled back are not counted", "models/running.py",
           "attempts = attempts + {1 + failures}", "attempts = attempts + 1", (ENGINE + "::test_a_pair_that_keeps",)),
    Mutant("a passing failure is not retried", "models/running.py",
           "            if is_transient(exc):\n", "            if False:\n", (RECOVERY, ENGINE)),
    Mutant("cut connections are not transient", "models/db.py",
           "isinstance(seen, (OSError, TimeoutError, PgClientStateError, PgClientInternalError))",
           "isinstance(seen, (OSError, TimeoutError, PgClientInternalError))", (RECOVERY,)),
    Mutant("deadlocks are not transient", "models/db.py",
           '_CONFLICT_SQLSTATES = {"40P01", "40001"}', '_CONFLICT_SQLSTATES = {"40001"}', (ENGINE,)),
    Mutant("tortoise's own asyncpg client", "models/settings.py",
           '    config["engine"] = "models.asyncpg_client"\n', "", (OUTAGE + "::test_a_transaction_whose_connection_died",)),
    Mutant("a transaction is named in the task before its BEGIN", "models/asyncpg_client.py",
           "        try:\n            await client.begin()",
           "        self.token = get_connections().set(self.connection_name, client)\n"
           "        try:\n            await client.begin()", (OUTAGE + "::test_a_transaction_whose_connection_died",)),
    Mutant("a transaction that failed to end stays named in the task", "models/asyncpg_client.py",
           "        get_connections().reset(self.token)\n        try:\n" + _ENDING,
           "        try:\n" + _ENDING + "            get_connections().reset(self.token)\n",
           (OUTAGE + "::test_a_transaction_whose_connection_died",)),
    Mutant("an outage uses up attempts", "models/running.py",
           "if not (is_unavailable(exc) and await wait_for_database()):",
           "if not (is_unavailable(exc) and await wait_for_database() and False):", (OUTAGE + "::test_a_bulk_survives_a_database_restart",)),
    Mutant("a worker does not wait for the database", "jobs/transfer.py",
           "            if not is_unavailable(exc):\n                raise", "            if True:\n                raise",
           (OUTAGE + "::test_a_lane_whose_connection_is_cut",)),
    Mutant("leases that ran out in an outage are taken at once", "models/leases.py",
           "    if reachable_for() < settings.LEASE_SECONDS:", "    if False:", (RECONCILE + "::test_a_lease_that_ran_out_while",)),
    Mutant("lease held by any generation", "models/leases.py",
           "transfer_id=ref.transfer_id, lane=ref.lane, generation=ref.generation, finished=False",
           "transfer_id=ref.transfer_id, lane=ref.lane, finished=False", (RECONCILE, RECOVERY)),
    Mutant("live leases taken over", "models/leases.py",
           "lease_until__lt=now()", "lease_until__isnull=False", (RECONCILE, RECOVERY), every=True),
    Mutant("takeover not fenced", "models/leases.py",
           "generation=F(\"generation\") + 1, lease_until=None, holder=None\n            ):",
           "lease_until=None, holder=None\n            ):", (RECONCILE, RECOVERY)),
    Mutant("no grace for young transfers", "models/leases.py",
           ".filter(lease_until=None, transfer__created_at__lt=settled)", ".filter(lease_until=None)", (RECONCILE,)),
    Mutant("lease never renewed", "jobs/transfer.py",
           "            await asyncio.sleep(settings.LEASE_SECONDS / 3)\n",
           "            await asyncio.sleep(3600)\n", (RECOVERY + "::test_a_pair_that_outlasts",)),
    Mutant("no hand-over when others wait", "jobs/transfer.py",
           "                if await _others_waiting(redis):", "                if False:",
           ("tests/test_fairness.py",)),
    Mutant("running jobs count as waiting", "jobs/transfer.py",
           "        return any(not running and queued is not None", "        return any(queued is not None",
           ("tests/test_fairness.py",)),
    Mutant("new transfers queue behind waiting lanes", "jobs/transfer.py",
           "await enqueue_lanes(pool, await leases.of_transfer(transfer.id), first=True)",
           "await enqueue_lanes(pool, await leases.of_transfer(transfer.id))", ("tests/test_fairness.py",)),
    Mutant("SIGTERM not heeded", "jobs/transfer.py",
           "            if draining():", "            if False:", (RECOVERY + "::test_sigterm",)),
    Mutant("stale job not dropped from the queue", "jobs/transfer.py",
           "        await _drop(redis, old)\n", "", (RECONCILE,)),
    Mutant("lost jobs not offered again", "jobs/transfer.py",
           "        offered.append(ref)\n    await enqueue_lanes", "    await enqueue_lanes", (RECONCILE, RECOVERY)),
    Mutant("worker ends with Redis", "jobs/worker.py",
           "        except (RedisError, OSError) as exc:\n            log.warning(\"Redis is unavailable",
           "        except ZeroDivisionError as exc:\n            log.warning(\"Redis is unavailable",
           (RECOVERY + "::test_redis_restarted",)),
    Mutant("dead clients' statements run on", "models/settings.py",
           '"client_connection_check_interval": str(PG_CONNECTION_CHECK_MS),', "",
           (RECOVERY + "::test_a_worker_killed_inside",)),
    Mutant("counters from a stale read", "models/running.py",
           "SET processed_pairs = processed_pairs + 1,",
           "SET processed_pairs = 1,", ("tests/test_bulk_transfer.py",)),
    Mutant("plan deletes what the source lacks", "models/engine.py",
           "target.get(dt.key, 0) if replaces(dt, source) else 0",
           "target.get(dt.key, 0) if dt.policy is Policy.OVERWRITE else 0", (ENGINE + "::test_overwrite_replaces", SINGLE + "::test_a_reversed")),
    Mutant("OVERWRITE erases for nothing", "models/engine.py",
           "parts.append(f\"gone AS (DELETE FROM {table} WHERE {m.owned(q, m.target, m.overwrite)} AND {source_has} RETURNING *)\")",
           "parts.append(f\"gone AS (DELETE FROM {table} WHERE {m.owned(q, m.target, m.overwrite)} RETURNING *)\")", (ENGINE + "::test_overwrite_replaces", SINGLE + "::test_a_reversed")),
    Mutant("schedule erased for nothing", "models/engine.py",
           "else f\"EXISTS (SELECT 1 FROM {table} WHERE {m.owned(q, m.source, m.overwrite)})\"",
           "else \"TRUE\"",
           (ENGINE + "::test_overwrite_replaces",)),
    Mutant("an empty source is not refused", "models/rules.py",
           "check.problems.append(nothing_to_transfer(user))", "pass",
           (SINGLE + "::test_a_source_that_owns_nothing", "tests/test_bulk_upload.py::test_a_row_whose_source_owns_nothing")),
    Mutant("a pair that moved nothing succeeds", "models/running.py",
           "        if item.moved:\n", "        if True:\n", (SINGLE + "::test_a_source_emptied_between_start",)),
    Mutant("a lost key race is not looked up", "models/starting.py",
           "if request is not None and (answered := await idempotency.replay(operator, request)) is not None:\n"
           "            return answered", "if False:\n            pass", (IDEMPOTENCY + "::test_twenty_concurrent",)),
    Mutant("the key is not checked first", "models/idempotency.py",
           "return found, (await replay(operator, found) if found else None)", "return found, None", (IDEMPOTENCY,)),
    Mutant("the fingerprint ignores the input", "models/idempotency.py",
           '{"mutation": mutation, "input": input}', '{"mutation": mutation}', (IDEMPOTENCY + "::test_the_same_key",)),
    Mutant("keys never expire", "models/idempotency.py",
           "key=req.key, created_at__gt=_cutoff()).first()", "key=req.key).first()", (IDEMPOTENCY + "::test_a_key_is_forgotten",)),
    Mutant("a revert takes back records that moved on", "models/revert_pairs.py",
           "f\"{c} = CASE WHEN {c} = {q.p(item.target_id)} AND id IN",
           "f\"{c} = CASE WHEN {q.p(item.target_id)} = {q.p(item.target_id)} AND id IN", (REVERT,)),
    Mutant("a revert ignores which column a record moved in", "models/revert_pairs.py",
           "f\"AND j.owner_column = {literal(column)} AND {q.isin('j.data_type', keys)}\"",
           "f\"AND {q.isin('j.data_type', keys)}\"", (REVERT,)),
    Mutant("deleted records are not put back", "models/revert_pairs.py",
           "            if any(item.overwritten.get(k) for k in keys):\n", "            if False:\n", (REVERT,)),
    Mutant("a new schedule of the source is no conflict", "models/revert_pairs.py",
           "if returning and effect.item.source_id in owning:", "if False:", (REVERT,)),
    Mutant("a new schedule of the target is no conflict", "models/revert_pairs.py",
           "if restoring and effect.item.target_id in owning and not returning:", "if False:", (REVERT,)),
    Mutant("a conflict is reverted anyway", "models/running.py",
           "    if effect.conflicts:\n        return effect.conflicts\n", "", (REVERT,)),
    Mutant("a transfer is reverted twice", "models/revert_pairs.py", "    if reverted:\n", "    if False:\n", (REVERT,)),
    Mutant("the undo window never ends", "models/revert_pairs.py",
           "if end is not None and end <= now():", "if False:", (REVERT,)),
    Mutant("pairs are not journaled", "models/running.py",
           "journal_item=item.id if transfer.journaled else None,", "journal_item=None,", (REVERT,)),
    Mutant("unchosen data types move too", "models/running.py",
           "            types=engine.chosen(transfer.data_types),\n            journal_item", "            journal_item",
           ("tests/test_data_types.py",)),
    Mutant("a pair's recorded event is numbered before it counts", "models/transfer_events.py",
           '_COUNTED = {"seq": "last_event",', '_COUNTED = {"seq": "last_event - 1",',
           ("tests/test_events.py", "tests/test_transfer_events.py")),
    Mutant("a pair's recorded event has another time than the one published", "models/transfer_events.py",
           '**extra, "at": at.isoformat()}', '**extra, "at": now().isoformat()}',
           ("tests/test_events.py", "tests/test_transfer_events.py")),
    Mutant("a WebSocket's last words are dropped at close", "graph/live/websocket.py",
           "        self.flush()  # a close frame", "        pass  # a close frame", ("tests/test_websocket.py",)),
    Mutant("a WebSocket writes each message at once", "graph/live/websocket.py",
           "        if not self._pending:\n            asyncio.get_running_loop().call_soon(self.flush)\n        self._pending.append(data)",
           "        self._transport.write(data)", ("tests/test_websocket.py",)),
    Mutant("a revoked token authenticates", "models/tenancy.py",
           'AND k.revoked_at IS NULL "', '"', ("tests/test_tokens.py",)),
    Mutant("an expired token authenticates", "models/tenancy.py",
           "AND (k.expires_at IS NULL OR k.expires_at > {q.p(at)})", "", ("tests/test_tokens.py",)),
    Mutant("a long text frame says its length in two bytes", "graph/live/websocket.py",
           "    if n < 1 << 16:", "    if n < 1 << 17:", ("tests/test_websocket.py",)),
    Mutant("messages sent together leave as their first alone", "graph/live/websocket.py",
           "            parts += (_frame_head(size + len(body)), prefix, body)",
           "            parts += (_frame_head(size + len(body)), prefix, body)\n            break", ("tests/test_websocket.py",)),
    Mutant("messages sent together do not wait for a full buffer", "graph/live/websocket.py",
           "        if text is not None and not self.writable.is_set():", "        if False:", ("tests/test_websocket.py",)),
    Mutant("a refused upgrade is told it may send many", "graph/live/websocket.py",
           "        if self.response.status_code == 101:  # else refused", "        if True:  # else refused", ("tests/test_websocket.py",)),
    Mutant("an event that raises takes its batch down with it", "graph/execution/shared_events.py",
           "            except Exception:  # raised again", "            except ZeroDivisionError:  # raised again", (BATCHES,)),
    Mutant("a batch with extensions beside it goes out as one message", "graph/live/encoding.py",
           "        if len(payload) != 1:  # it would go out", "        if False:  # it would go out", (BATCHES,)),
    Mutant("no connection is told it may send many", "graph/live/websocket.py",
           "        self.scope[\"extensions\"][SEND_MANY] = {}", "        pass", (BATCHES,)),
    Mutant("a batch carries an event with errors", "graph/execution/shared_events.py",
           "not isinstance(result.data, EncodedData):  # errors", "False:  # errors", (BATCHES,)),
    Mutant("a batch says it carried one event less", "graph/execution/shared_events.py",
           "        batch.taken = len(data)", "        batch.taken = max(0, len(data) - 1)", (BATCHES,)),
    Mutant("a batch's events are sent again alone", "graph/api/transfer_events.py",
           "                    pending = pending[batch.taken :]", "", (BATCHES,)),
    Mutant("a batch takes events read from the record", "graph/api/transfer_events.py",
           "if p.shared is None), len(pending))", "if False), len(pending))", ("tests/test_events.py",)),
    Mutant("a selection of the transfer is batched", "graph/api/transfer_events.py",
           "sends_many(info.context.request.scope) and shareable(info.operation, info._raw_info.fragments)",
           "sends_many(info.context.request.scope)", (BATCHES,)),
    # Issue 18: each behaviour below has a test of its own, named after the rule.
    Mutant("a tenant admin with a view sees the whole tenant", "models/tenancy.py",
           "    return operator.view_id is None and operator.tenant_admin\n",
           "    return operator.tenant_admin\n",
           ("tests/test_scope.py::test_a_tenant_admin_with_a_view",)),
    Mutant("a tenant admin with a view is shown every user", "models/tenancy.py",
           "    if sees_whole_tenant(operator):\n        query",
           "    if operator.tenant_admin:\n        query", ("tests/test_scope.py::test_a_tenant_admin_with_a_view",)),
    Mutant("a tenant admin with a view checks pairs over the whole tenant", "models/rules.py",
           "            if sees_whole_tenant(operator):",
           "            if operator.tenant_admin:", ("tests/test_scope.py::test_a_tenant_admin_with_a_view",)),
    Mutant("cross-pair messages name users outside the view", "models/rules.py",
           "if users.get(uid) and users[uid].id in visible})", "if users.get(uid)})",
           ("tests/test_bulk_upload.py::test_a_user_outside_the_view_named_twice",)),
    Mutant("a replayed key shows a transfer that left the view", "models/idempotency.py",
           "transfer = await visible_transfers(operator).filter(", "transfer = await Transfer.filter(",
           (IDEMPOTENCY + "::test_a_resent_start_never_shows",)),
    Mutant("the fingerprint ignores the mutation", "models/idempotency.py",
           '{"mutation": mutation, "input": input}', '{"input": input}', (IDEMPOTENCY + "::test_one_key_sent_with_a_revert",)),
    Mutant("a revert returns what another transfer brought", "models/revert_pairs.py",
           'f"SELECT {record} FROM journal_move j CROSS JOIN {ids} WHERE j.item_id = {q.p(item.id)} "',
           'f"SELECT {record} FROM journal_move j CROSS JOIN {ids} WHERE 1 = 1 "',
           (REVERT + "::test_reverting_one_of_two_transfers",)),
    Mutant("the purge forgets the grace period", "models/purge.py",
           "cutoff = now() - timedelta(days=settings.REVERT_DAYS) - GRACE",
           "cutoff = now() - timedelta(days=settings.REVERT_DAYS)", ("tests/test_purge.py::test_a_journal_is_kept_until",)),
    Mutant("purgers on PostgreSQL wait for each other's transfers instead of skipping them", "models/purge.py",
           'lock = " FOR UPDATE OF t SKIP LOCKED" if q.postgres else ""', 'lock = ""',
           ("tests/test_purge.py::test_a_purge_skips_the_transfers_another_workers_purge_step_holds",)),
    Mutant("a cancel locks the transfer before the pairs (deadlocks with a pair in flight)", "models/running.py",
           "        await TransferItem.filter(transfer_id=transfer.id, status=ItemStatus.PENDING).using_db(db).update(\n"
           "            status=ItemStatus.CANCELLED, finished_at=now()\n        )\n"
           "        stopped = await Transfer.filter(id=transfer.id, status__in=ACTIVE_STATUSES).using_db(db).update(\n"
           "            status=TransferStatus.CANCELLED, finished_at=now()\n        )\n",
           "        stopped = await Transfer.filter(id=transfer.id, status__in=ACTIVE_STATUSES).using_db(db).update(\n"
           "            status=TransferStatus.CANCELLED, finished_at=now()\n        )\n"
           "        await TransferItem.filter(transfer_id=transfer.id, status=ItemStatus.PENDING).using_db(db).update(\n"
           "            status=ItemStatus.CANCELLED, finished_at=now()\n        )\n",
           ("tests/test_bulk_transfer.py::test_a_cancel_while_a_pair_is_in_flight",)),
    Mutant("a takeover's update does not check the lease again", "models/leases.py",
           "            if await _mine(old).filter(lease_until__lt=now()).using_db(db).update(",
           "            if await _mine(old).using_db(db).update(", (RECONCILE + "::test_a_lease_renewed_between",)),
    Mutant("a lost attempt is counted whether or not the lane was taken", "models/leases.py",
           "        async with in_transaction() as db:\n            if await _mine(old)",
           "        async with in_transaction() as db:\n            await _count_lost_attempt(old, db)\n            if await _mine(old)",
           (RECONCILE + "::test_a_lease_renewed_between",)),
    Mutant("the lease is renewed for half a lease", "models/leases.py",
           "    until = now() + timedelta(seconds=settings.LEASE_SECONDS)",
           "    until = now() + timedelta(seconds=settings.LEASE_SECONDS / 2)", (RECOVERY + "::test_a_lane_job_renews",)),
    Mutant("the lease is renewed once a lease", "jobs/transfer.py",
           "            await asyncio.sleep(settings.LEASE_SECONDS / 3)\n",
           "            await asyncio.sleep(settings.LEASE_SECONDS)\n", (RECOVERY + "::test_a_lane_job_renews",)),
    # Webhooks (models/webhook_deliveries.py, models/webhook_urls.py, models/webhooks.py).
    Mutant("the schedule's second wait is 4 min", DELIVERIES, "SCHEDULE = (5, 5 * 60,", "SCHEDULE = (5, 4 * 60,",
           (WEBHOOKS + "::test_the_schedule",)),
    Mutant("a delivery is given up one attempt early", DELIVERIES, "    if attempts > len(SCHEDULE):",
           "    if attempts >= len(SCHEDULE):", (WEBHOOKS + "::test_the_schedule",)),
    Mutant("the jitter is only ever late", DELIVERIES, "random.uniform(1 - JITTER, 1 + JITTER)",
           "random.uniform(1, 1 + JITTER)", (WEBHOOKS + "::test_the_schedule",)),
    Mutant("the jitter is 5 %", DELIVERIES, "JITTER = 0.1 ", "JITTER = 0.05 ", (WEBHOOKS + "::test_the_schedule",)),
    Mutant("the jitter is 20 %", DELIVERIES, "JITTER = 0.1 ", "JITTER = 0.2 ", (WEBHOOKS + "::test_the_schedule",)),
    Mutant("Retry-After is not capped at a day", DELIVERIES, "max(wait, min(retry_after, MAX_RETRY_AFTER))",
           "max(wait, retry_after)", (WEBHOOKS + "::test_retry_after_lengthens",)),
    Mutant("Retry-After replaces a longer wait", DELIVERIES, "max(wait, min(retry_after, MAX_RETRY_AFTER))",
           "min(retry_after, MAX_RETRY_AFTER)", (WEBHOOKS + "::test_retry_after_lengthens",)),
    Mutant("a 404 disables, not a 410", DELIVERIES, "if outcome.status == 410:", "if outcome.status == 404:",
           (WEBHOOKS + "::test_a_410",)),
    Mutant("the endpoint is disabled after 4 days", DELIVERIES, "DISABLE_AFTER = timedelta(days=3)",
           "DISABLE_AFTER = timedelta(days=4)", (WEBHOOKS + "::test_three_days",)),
    Mutant("the 3 days count from the last failure", DELIVERIES, "    failing_since = endpoint.failing_since or at\n",
           "    failing_since = at\n", (WEBHOOKS + "::test_three_days",)),
    Mutant("a success does not start the 3 days again", DELIVERIES,
           "endpoint.failing_since = None if counts else endpoint.failing_since",
           "endpoint.failing_since = endpoint.failing_since", (WEBHOOKS + "::test_a_success_starts",)),
    Mutant("a failed webhook.test counts toward the 3 days", DELIVERIES,
           "counts = delivery.event != TEST_EVENT", "counts = True", (WEBHOOKS + "::test_a_failed_webhook_test",)),
    Mutant("a disabling failure leaves the other deliveries pending", DELIVERIES,
           "            await fail_pending(endpoint.id, f\"The endpoint was disabled: {disabled}\", db)\n", "",
           (WEBHOOKS + "::test_three_days",)),
    Mutant("a claim ignores a live lease", DELIVERIES,
           "Q(id=pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=at) & free",
           "Q(id=pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=at)", (WEBHOOKS + "::test_a_delivery_a_worker_holds",)),
    Mutant("a claim ignores the delivery's time", DELIVERIES,
           "Q(id=pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=at) & free",
           "Q(id=pk, status=DeliveryStatus.PENDING) & free", (WEBHOOKS + "::test_a_delivery_is_claimed_only_once_due",)),
    Mutant("the old secret signs past its 24 hours", DELIVERIES,
           "endpoint.previous_secret_until and endpoint.previous_secret_until > at",
           "endpoint.previous_secret_until", ("tests/test_webhook_signing.py::test_after_a_rotation",)),
    # (Dropping announce_end's using_db=db changes nothing: tortoise sends the task's queries into the
    # transaction it has open. test_an_ending_and_its_deliveries_commit_or_roll_back_together holds the rule.)
    Mutant("a disabled endpoint is announced to", "models/webhooks.py",
           "WebhookEndpoint.filter(tenant_id=transfer.tenant_id, enabled=True)",
           "WebhookEndpoint.filter(tenant_id=transfer.tenant_id)", (WEBHOOKS + "::test_only_enabled",)),
    Mutant("6to4 is let through", URLS, '    ipaddress.ip_network("2002::/16"): "a 6to4 address",\n', "",
           (SSRF,)),
    Mutant("an IPv4-mapped address is checked as IPv6", URLS,
           "    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:\n"
           "        address = address.ipv4_mapped\n", "", (SSRF,)),
    Mutant("only the first resolved address is checked", URLS, "            for address in addresses:\n",
           "            for address in addresses[:1]:\n", (SSRF,)),
    Mutant("the request goes to the last address, not the first", URLS, "address=str(addresses[0])",
           "address=str(addresses[-1])", (SSRF + "::test_the_request_goes_to_the_resolvers_first_answer",)),
    Mutant("http is allowed", URLS, 'allowed = ("https",) if https_only else ("https", "http")',
           'allowed = ("https", "http")', (SSRF,)),
    Mutant("user info is allowed", URLS, "    if parts.username is not None or parts.password is not None:\n",
           "    if False:\n", (SSRF,)),
    Mutant("not-global addresses pass", URLS, "    if not address.is_global:\n", "    if False:\n", (SSRF,)),
    Mutant("subscribers are woken as often however many they are", "graph/live/fanout.py",
           "max(WAKE_SECONDS_MIN, self.followers * WAKE_SECONDS_PER_FOLLOWER)", "WAKE_SECONDS_MIN", ("tests/test_event_fanout.py",)),
]


def _selection(tests: tuple[str, ...]) -> list[str]:
    """pytest arguments for `tests`: files, or `file::name_prefix` (pytest's node IDs take
    no prefixes, so those become a -k expression)."""
    files = sorted({t.split("::", 1)[0] for t in tests})
    prefixes = [t.split("::", 1)[1] for t in tests if "::" in t]
    if prefixes and len(prefixes) < len(tests):
        raise ValueError(f"mix whole files and named tests in separate mutants: {tests}")
    return files + (["-k", " or ".join(prefixes)] if prefixes else [])


def run(mutant: Mutant) -> bool:
    """True when a test failed (the mutant was killed)."""
    path = ROOT / mutant.path
    source = path.read_text()
    found = source.count(mutant.original)
    assert found >= 1 if mutant.every else found == 1, f"{mutant.name}: the original text is not in {mutant.path} once"
    path.write_text(source.replace(mutant.original, mutant.mutated))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--timeout=90", *_selection(mutant.tests)],
            cwd=ROOT, capture_output=True, text=True,
        )
    finally:
        path.write_text(source)
    # 1: a test failed. Anything else (no test selected, a usage error) proves nothing.
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{mutant.name}: pytest exited {result.returncode}:\n{result.stdout[-2000:]}")
    return result.returncode == 1


def main(names: list[str]) -> int:
    chosen = [m for m in MUTANTS if not names or m.name in names]
    survived = 0
    for mutant in chosen:
        killed = run(mutant)
        survived += not killed
        print(f"{'killed  ' if killed else 'SURVIVED'}  {mutant.name}  ({mutant.path}; {', '.join(mutant.tests)})", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
