"""Tenants share the workers: a single transfer never waits behind another tenant's bulk,
and two tenants' bulks progress side by side.

One real worker process with two job slots, slowed pairs and short slices, so
that the bulk alone could fill it: fairness has to come from the lanes taking
turns, not from spare capacity.
"""

from __future__ import annotations

from pathlib import Path

from graph.relay import to_global_id
from models import bulk, lifecycle, settings
from models.transfers import Transfer
from tests.processes import Workers, enqueue, until, worker_env
from tests.support import Api, World, make_world


async def _bulk(world: World, pairs: list[tuple[int, int]]) -> Transfer:
    for source, _ in pairs:
        await world.give(source, "CCR", 5)
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    transfer, problems = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "f.csv", content.encode()))
    assert problems == []
    return transfer


async def _status(transfer: Transfer) -> Transfer:
    return await Transfer.get(id=transfer.id)


async def test_a_single_transfer_and_another_tenants_bulk_run_while_a_bulk_runs(
    api: Api, world: World, database: str, redis_url: str, tmp_path: Path, monkeypatch
) -> None:
    queue = f"udt:test-fairness:{world.tenant.id}"
    monkeypatch.setattr(settings, "QUEUE_NAME", queue)
    monkeypatch.setattr(settings, "BULK_LANES", 2)
    workers = Workers(
        worker_env(database, redis_url, queue, UDT_WORKER_MAX_JOBS="2", UDT_SLICE_SECONDS="0.3"), tmp_path / "pairs"
    )
    other = await make_world()
    try:
        first = await _bulk(world, [(s, s + 15) for s in range(10, 25)])  # 15 pairs
        await workers.start(SLOW_PAIR_SECONDS="0.3")
        await enqueue(first)
        await until(lambda: workers.pairs_begun() >= 2, 60)  # the first bulk fills both job slots

        await other.give(10, "CCR", 1)
        single, problems = await lifecycle.start_single(other.users[1], 10, 11)
        assert problems == []
        second = await _bulk(other, [(s, s + 5) for s in range(12, 17)])
        await enqueue(single)
        await enqueue(second)

        await until(lambda: _finished(single), 60)
        assert not (await _status(first)).status.finished  # the single one did not wait for the bulk
        await until(lambda: _progressed(second), 60)
        assert not (await _status(first)).status.finished  # the second bulk did not wait either

        await until(lambda: _finished(first), 120)
        await until(lambda: _finished(second), 120)
        for transfer in (first, second, single):
            done = await api.wait_finished(
                world.admin if transfer is first else other.admin, to_global_id("Transfer", transfer.id)
            )
            assert done["status"] == "SUCCEEDED"
    finally:
        await workers.stop_all()


async def _finished(transfer: Transfer) -> bool:
    return (await _status(transfer)).status.finished


async def _progressed(transfer: Transfer) -> bool:
    return (await _status(transfer)).processed_pairs > 0
