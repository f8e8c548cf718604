"""Where the CPU goes per job: the CPU time of each group of processes (``ledger serve``,
the workers, PostgreSQL's processes, the benchmark's own client) over a timed window,
divided by the jobs done in it, with the machine's idle share, from ``/proc`` alone.

A group's time is its processes' user + system time, threads included; PostgreSQL's is
the postmaster's and every process under it, those that exited during the window
included (the kernel adds a reaped child's time to its parent's ``cutime``/``cstime``).
What the machine spent busy beyond the groups is "other": other people's work on a
shared machine. The ceiling a split implies is the machine's CPUs divided by the groups'
CPU per job: the rate the system could reach with the whole machine to itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")
NOTE = "cpu_split"
"""The key of a ``Figure``'s note that holds its split (JSON)."""


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 once it is gone."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def processes() -> dict[int, tuple[int, float]]:
    """Every live process: pid -> (parent pid, its CPU seconds with its reaped children's)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
                found[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
            except (OSError, IndexError, ValueError):
                continue
    return {pid: (parent, ticks / TICKS) for pid, (parent, ticks) in found.items()}


def tree_seconds(pid: int, table: dict[int, tuple[int, float]] | None = None) -> float:
    """CPU seconds of ``pid`` and everything under it, exited children included."""
    table = processes() if table is None else table
    if pid not in table:
        return 0.0
    children = [child for child, (parent, _) in table.items() if parent == pid]
    return table[pid][1] + sum(tree_seconds(child, table) for child in children)


def postmaster_of(url: str) -> int | None:
    """The pid of the local server's postmaster (the parent of a backend), or None when
    the server is not a process of this machine."""
    with psycopg.connect(url, autocommit=True, connect_timeout=30) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:  # while the backend lives: it exits with the connection
            return int(_stat(int(row[0]) if row else 0)[1])
        except (OSError, IndexError, ValueError):
            return None


def own_seconds() -> float:
    """This process's own CPU seconds (all its threads, not its children)."""
    times = os.times()
    return times.user + times.system


def machine_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


Probe = Callable[[], float]


@dataclass
class Split:
    """CPU seconds per group over windows, the jobs done in them, the machine's time."""

    seconds: dict[str, float] = field(default_factory=dict)
    jobs: int = 0
    wall: float = 0.0
    busy: float = 0.0
    total: float = 0.0

    def add(self, other: Split) -> None:
        for name, value in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value
        self.jobs += other.jobs
        self.wall += other.wall
        self.busy += other.busy
        self.total += other.total

    def ms_per_job(self) -> dict[str, float]:
        jobs = max(1, self.jobs)
        rows = {name: 1e3 * value / jobs for name, value in self.seconds.items()}
        rows["other work on the machine"] = max(0.0, 1e3 * self.busy / jobs - sum(rows.values()))
        return rows

    @property
    def own_ms(self) -> float:
        """The groups' CPU per job (the system under test, "other" left out)."""
        return 1e3 * sum(self.seconds.values()) / max(1, self.jobs)

    @property
    def idle(self) -> float:
        return max(0.0, 1.0 - self.busy / self.total) if self.total else 0.0

    def ceiling(self, cpus: int | None = None) -> float:
        """Jobs/s if the groups had every CPU of the machine and nothing else ran."""
        cpus = cpus or os.cpu_count() or 1
        return 1e3 * cpus / self.own_ms if self.own_ms else 0.0

    def note(self) -> str:
        return json.dumps({"seconds": self.seconds, "jobs": self.jobs, "wall": self.wall,
                           "busy": self.busy, "total": self.total})  # fmt: skip

    @classmethod
    def from_note(cls, text: str) -> Split:
        data: dict[str, Any] = json.loads(text)
        return cls(dict(data["seconds"]), int(data["jobs"]), float(data["wall"]),
                   float(data["busy"]), float(data["total"]))  # fmt: skip


class Window:
    """One timed window: probes read at ``start()`` and at ``stop(jobs)``."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self.probes = dict(probes)
        self.begin: dict[str, float] = {}
        self.machine = (0.0, 0.0)

    def start(self) -> None:
        self.begin = {name: probe() for name, probe in self.probes.items()}
        self.machine = machine_ticks()

    def stop(self, jobs: int, wall: float) -> Split:
        busy, total = machine_ticks()
        seconds = {name: max(0.0, probe() - self.begin[name])
                   for name, probe in self.probes.items()}  # fmt: skip
        return Split(seconds, jobs, wall, busy - self.machine[0], total - self.machine[1])


def group(pids: Iterable[int]) -> Probe:
    """A probe of several process trees (e.g. the worker processes)."""
    frozen = list(pids)

    def probe() -> float:
        table = processes()
        return sum(tree_seconds(pid, table) for pid in frozen)

    return probe


def postgres_probe(url: str) -> Probe:
    postmaster = postmaster_of(url)
    return (lambda: tree_seconds(postmaster)) if postmaster else (lambda: 0.0)


def table(splits: Mapping[str, Split]) -> list[str]:
    """A markdown table: CPU ms per job by group, one column per system."""
    names = list(splits)
    groups: list[str] = []
    for split in splits.values():
        groups += [g for g in split.ms_per_job() if g not in groups]
    groups.sort(key=lambda g: g == "other work on the machine")
    lines = ["| CPU ms per job | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]  # fmt: skip
    for name in groups:
        cells = [f"{s.ms_per_job()[name]:.2f}" if name in s.ms_per_job() else ""
                 for s in splits.values()]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **the system under test** | "
                 + " | ".join(f"**{s.own_ms:.2f}**" for s in splits.values()) + " |")
    lines.append("| machine idle over the runs | "
                 + " | ".join(f"{s.idle:.0%}" for s in splits.values()) + " |")
    lines.append(f"| ceiling ({os.cpu_count()} CPUs / CPU per job), jobs/s | "
                 + " | ".join(f"{s.ceiling():,.0f}" for s in splits.values()) + " |")
    return lines


def settle(
    url: str, *, idle: float = 0.85, bound: float = 30.0, window: float = 0.5
) -> float:
    """Before a timed measurement: a ``CHECKPOINT`` (the sections before it leave dirty
    pages, whose writes and the kernel's writeback would otherwise land in its window, on
    whichever system runs first), then wait until the machine is at least ``idle`` idle
    over ``window`` seconds, at most ``bound`` seconds; the seconds waited. A server that
    refuses the checkpoint (not a superuser) is only waited for."""
    started = time.monotonic()
    with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    while time.monotonic() - started < bound:
        busy, total = machine_ticks()
        time.sleep(window)
        busy2, total2 = machine_ticks()
        if total2 > total and 1 - (busy2 - busy) / (total2 - total) >= idle:
            break
    return time.monotonic() - started
