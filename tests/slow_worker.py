"""A real `udt worker` whose pairs take longer, inside their transaction.

SLOW_PAIR_SECONDS: every pair sleeps this long after its statements, before its
commit. PAIR_MARKER: a file that gets one line (the source's pk) per pair at that
moment, so a test knows a pair is in flight. HANG_AFTER: pairs after that many
sleep for an hour instead, so a test can kill or stop the worker mid-pair; with
HANG_IN_STATEMENT=1 they sleep inside a PostgreSQL statement (`pg_sleep`), the way
a pair of ten million records spends its time. HANG_BEFORE_WEBHOOK: a file; a webhook attempt,
its delivery claimed, writes the delivery's ID there and hangs instead of sending, so a test can
kill the worker between the commit of a transfer's end and the send. HANG_BEFORE_WEBHOOK_CLAIM and
HANG_BEFORE_WEBHOOK_RECORD: the same, a step earlier (the job started, the delivery not yet claimed)
or later (sent, its outcome not yet stored). PAIR_GAP_SECONDS: a pause after each pair's commit,
before the next: on SQLite a pair holds the file's one write lock, and another writer (a cancel)
waiting for it gets in only between two pairs.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graph.process.cli import main  # noqa: E402
from models import engine, running  # noqa: E402

DELAY = float(os.environ.get("SLOW_PAIR_SECONDS", "0"))
MARKER = os.environ.get("PAIR_MARKER")
HANG_AFTER = int(os.environ.get("HANG_AFTER", "-1"))
HANG_IN_STATEMENT = os.environ.get("HANG_IN_STATEMENT") == "1"
GAP = float(os.environ.get("PAIR_GAP_SECONDS", "0"))
_apply = engine.apply_pair
_process = running.process_item
_started = 0


async def slow_apply(source_pk, target_pk, db, **options):  # type: ignore[no-untyped-def]
    global _started
    done = await _apply(source_pk, target_pk, db, **options)
    _started += 1
    if MARKER:
        with open(MARKER, "a") as marker:
            marker.write(f"{source_pk}\n")
    if not 0 <= HANG_AFTER < _started:
        await asyncio.sleep(DELAY)
    elif HANG_IN_STATEMENT:
        await db.execute_query("SELECT pg_sleep(3600)")
    else:
        await asyncio.sleep(3600)
    return done


async def process_with_gap(item_id):  # type: ignore[no-untyped-def]
    done = await _process(item_id)
    await asyncio.sleep(GAP)
    return done


engine.apply_pair = slow_apply
running.process_item = process_with_gap

WEBHOOK_MARKER = os.environ.get("HANG_BEFORE_WEBHOOK")
if WEBHOOK_MARKER:
    from jobs import webhooks

    async def never_send(held, guard, timeout):  # type: ignore[no-untyped-def]
        with open(WEBHOOK_MARKER, "a") as marker:
            marker.write(f"{held.delivery.id}\n")
        await asyncio.sleep(3600)

    webhooks.attempt = never_send

CLAIM_MARKER = os.environ.get("HANG_BEFORE_WEBHOOK_CLAIM")
RECORD_MARKER = os.environ.get("HANG_BEFORE_WEBHOOK_RECORD")
if CLAIM_MARKER or RECORD_MARKER:
    from models import webhook_deliveries

    async def never_claim(pk):  # type: ignore[no-untyped-def]
        with open(CLAIM_MARKER, "a") as marker:
            marker.write(f"{pk}\n")
        await asyncio.sleep(3600)

    async def never_record(held, outcome):  # type: ignore[no-untyped-def]
        with open(RECORD_MARKER, "a") as marker:
            marker.write(f"{held.delivery.id}\n")
        await asyncio.sleep(3600)

    if CLAIM_MARKER:
        webhook_deliveries.claim = never_claim
    else:
        webhook_deliveries.record = never_record
main(["worker"])
