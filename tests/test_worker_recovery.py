"""A worker killed with SIGKILL mid-job: another worker finishes, every pair applied exactly once."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from graph.relay import to_global_id
from jobs import transfer as transfer_jobs
from jobs.connection import arq_pool
from models import bulk, settings
from models.transfers import ItemStatus, Transfer, TransferItem
from models.userdata import AgentSchedule, Evaluation, OwnedRecord
from tests.support import Api, World

SCRIPT = Path(__file__).with_name("slow_worker.py")
JOB_TIMEOUT = 2  # arq hands a dead worker's job on after this + 10 s


async def _records() -> int:
    return await OwnedRecord.all().count() + await Evaluation.all().count() + await AgentSchedule.all().count()


async def _worker(env: dict[str, str], delay: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), env={**env, "SLOW_PAIR_SECONDS": str(delay)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def _until(predicate, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


async def test_a_killed_worker_loses_nothing_and_duplicates_nothing(
    api: Api, world: World, database: str, redis_url: str, monkeypatch
) -> None:
    queue = f"udt:test-recovery:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)  # only the workers started here take these jobs
    monkeypatch.setattr(settings, "CHUNK_SIZE", 3)
    pairs = [(s, s + 10) for s in range(10, 20)]
    for source, target in pairs:
        await world.give(source, "CCR", 20)
        await world.give(source, "PROJECT", 5)
        await world.give(target, "CCR", 2)
        await world.give(target, "PROJECT", 3)
    before = await _records()
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    transfer, problems = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "f.csv", content.encode()))
    assert problems == []

    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "UDT_QUEUE_NAME": queue,
        "UDT_CHUNK_SIZE": "3",
        "UDT_JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT),
    }
    # A subscriber on this API process, while the pairs are applied by other processes.
    watching = asyncio.create_task(api.events(world.admin, to_global_id("Transfer", transfer.id)))
    doomed = await _worker(env, delay=0.5)
    pool = await arq_pool()
    try:
        await transfer_jobs.enqueue(pool, transfer)
    finally:
        await pool.aclose()

    async def some_applied() -> bool:
        return (await Transfer.get(id=transfer.id)).processed_pairs >= 2

    await _until(some_applied, 60)
    doomed.kill()  # SIGKILL: no clean-up, a pair's transaction open
    await doomed.wait()
    applied_when_killed = (await Transfer.get(id=transfer.id)).processed_pairs
    assert applied_when_killed < len(pairs)

    rescuer = await _worker(env, delay=0)
    try:
        async def finished() -> bool:
            return (await Transfer.get(id=transfer.id)).status.finished

        await _until(finished, JOB_TIMEOUT + 10 + 60)
    finally:
        rescuer.terminate()
        await rescuer.wait()

    done = await Transfer.get(id=transfer.id)
    assert (done.processed_pairs, done.succeeded_pairs, done.failed_pairs) == (10, 10, 0)
    assert set(await TransferItem.filter(transfer_id=transfer.id).values_list("status", flat=True)) == {ItemStatus.SUCCEEDED}
    for source, target in pairs:
        assert await world.owned(source) == {}
        assert await world.owned(target) == {"CCR": 22, "PROJECT": 5}
    assert await _records() == before - 3 * len(pairs)  # only the targets' overwritten PROJECT records are gone

    received = await asyncio.wait_for(watching, 30)
    items = [(e["sourceUserId"], e["targetUserId"]) for e in received if e["type"] == "ITEM_SUCCEEDED"]
    assert sorted(items) == pairs  # every pair's event exactly once, even the killed worker's
    assert received[-1]["type"] == "SUCCEEDED" and received[-1]["processedPairs"] == len(pairs)
