"""The reconciler: the database is the source of truth, so work Redis lost is found again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from graph.relay import to_global_id
from jobs.transfer import reconcile
from models import lifecycle
from models.transfers import Transfer, TransferStatus
from tests.support import Api, World


async def test_a_transfer_whose_jobs_were_lost_is_enqueued_again_and_finishes(api: Api, world: World, pool) -> None:
    await world.give(10, "CCR", 2)
    lost, _ = await lifecycle.start_single(world.users[1], 10, 11)  # committed, never enqueued
    young, _ = await lifecycle.start_single(world.users[1], 12, 13)
    await Transfer.filter(id=lost.id).update(created_at=lost.created_at - timedelta(minutes=5))
    assert await reconcile({"redis": pool}) >= 1
    done = await api.wait_finished(world.admin, to_global_id("Transfer", lost.id))
    assert done["status"] == "SUCCEEDED"
    assert await world.owned(11) == {"CCR": 2}
    await asyncio.sleep(0.5)  # the worker polls every 0.2 s: it would have started the young one by now
    assert (await Transfer.get(id=young.id)).status is TransferStatus.QUEUED  # left to its own enqueue
    await lifecycle.cancel(young)
