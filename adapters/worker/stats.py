"""What a worker did: counters for logs, tests and the demo."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkerStats:
    """What a worker did, for logs, tests and the demo."""

    received: int = 0
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    interrupted: int = 0
    superseded: int = 0
    cancelled: int = 0
    """Attempts whose handler an operator's cancel stopped, reported cancelled."""
    duplicates: int = 0
    released: int = 0
    heartbeats: int = 0
    abandoned_threads: int = 0
    """Plain handlers still running in their threads when the worker stopped (they were
    superseded or interrupted and ignored ``ctx.cancelled``)."""
