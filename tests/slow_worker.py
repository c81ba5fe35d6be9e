"""A real `udt worker` whose pairs take SLOW_PAIR_SECONDS longer, inside their transaction.

The recovery test kills it with SIGKILL in the middle of a pair: the pair's
transaction must roll back, and another worker must finish the job.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graph.cli import main  # noqa: E402
from models import engine  # noqa: E402

DELAY = float(os.environ.get("SLOW_PAIR_SECONDS", "0"))
_apply = engine.apply_pair


async def slow_apply(source_pk, target_pk, db):  # type: ignore[no-untyped-def]
    done = await _apply(source_pk, target_pk, db)
    await asyncio.sleep(DELAY)
    return done


engine.apply_pair = slow_apply
main(["worker"])
