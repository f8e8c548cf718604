"""The limiter's counters: what a store must do, and the in-memory store (the fallback).

A store counts hits on (bucket, window) rows, admitting them up to the window's limit, in
one atomic step per batch; the database stores are in ``adapters/postgres/http_api.py``
and ``adapters/sqlite/http_api.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class Hit(NamedTuple):
    """``hits`` hits on one bucket's window, admitted up to ``limit``."""

    bucket: str
    window_start: int
    window_end: int
    limit: int
    hits: int


class Counted(NamedTuple):
    """What the store did with a :class:`Hit`."""

    admitted: int
    """Hits admitted in the window so far, these included."""
    admitted_now: int
    """How many of these hits were admitted (the first ``admitted_now`` of them)."""


class CounterStore(Protocol):
    """Shared counters: the database's, or memory's."""

    name: str
    timeout: float
    """How long a decision may wait for the store before the limiter falls back."""

    async def hit(self, hits: Sequence[Hit]) -> list[Counted]:
        """Count ``hits`` (one per bucket and window) atomically; answer in their order."""
        ...

    async def ping(self) -> None:
        """Raise unless the store answers."""
        ...

    async def cleanup(self, now: int) -> int:
        """Forget windows that ended before ``now``; return how many."""
        ...

    async def close(self) -> None: ...
