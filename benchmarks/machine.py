"""Shared by the benchmarks: what a process and the whole machine spend (Linux /proc).

The machine is shared (2 cores, other engineers' tests), so every benchmark that
times something says what else the machine was doing meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy: what is left after the processes a
    benchmark accounts for is PostgreSQL's, Redis's and the other engineers'."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def waited_seconds(pid: int) -> float:
    """How long the process's main thread has waited for a CPU while it had work (runnable,
    not running): what the machine's other processes cost it, beside its own CPU time."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def rss_bytes(pid: int) -> int:
    """Resident memory of one process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for {pid}")


def load() -> str:
    """The load averages over 1, 5 and 15 minutes, as uptime prints them."""
    return ", ".join(Path("/proc/loadavg").read_text().split()[:3])
