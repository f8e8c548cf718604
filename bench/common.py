"""Shared pieces of the workloads run by ``python -m bench``: fresh databases on one
server, repeated measurements summarised as median (min-max), percentiles."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import uuid4

from tests.support.pg import PostgresServer


@contextmanager
def fresh_database(server: PostgresServer, prefix: str) -> Iterator[str]:
    """A new empty database on ``server``: its URL, dropped after."""
    name = f"bench_{prefix}_{uuid4().hex[:10]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@dataclass
class Figure:
    """Several runs of one measurement: one value per run (a rate or a duration)."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    """Per-operation latencies (seconds) over all runs, for percentiles."""
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else 0.0

    def spread(self, scale: float = 1.0) -> str:
        return spread(self.values, scale)


def spread(values: Sequence[float], scale: float = 1.0) -> str:
    """``median (min-max)`` with digits that suit the size."""
    if not values:
        return "n/a"
    v = [x * scale for x in values]
    m = statistics.median(v)
    d = 0 if m >= 100 else 1 if m >= 10 else 2
    if len(v) == 1:
        return f"{m:,.{d}f}"
    return f"{m:,.{d}f} ({min(v):,.{d}f}-{max(v):,.{d}f})"


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank), 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def load_note() -> str:
    """The one-minute load average, and what it says about the machine during the run."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    state = "other work was running too" if load > cores * 0.75 else "the machine was quiet"
    return f"load average {load:.1f} at the end: {state}"
