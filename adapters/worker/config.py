"""How a worker runs: concurrency, queues, heartbeat interval, grace period."""

from __future__ import annotations

import math
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

from adapters.service.settings import Settings
from ledger.ports.transport import MAX_VISIBILITY_SECONDS, MAX_WAIT_SECONDS
from ledger.text import is_storable

HEARTBEAT_CAP_SECONDS = 30.0
"""The default heartbeat interval never exceeds this."""
HEARTBEATS_PER_THRESHOLD = 4
"""The default interval fits this many heartbeats into the stale threshold."""
MIN_VISIBILITY_SECONDS = 10.0
_CONTROL = re.compile(r"[\x00-\x1f]")
"""What a name in the ledger may not hold (``ledger.commands.Name``)."""


def default_heartbeat_interval(stale_threshold_seconds: float) -> float:
    """``min(30 s, threshold / 4)``: three heartbeats may be lost before a job looks stale."""
    return min(HEARTBEAT_CAP_SECONDS, stale_threshold_seconds / HEARTBEATS_PER_THRESHOLD)


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in a job's history."""
    host = socket.gethostname()[:120] or "worker"
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a :class:`~adapters.worker.runner.Worker` can be told."""

    concurrency: int = 1
    """Jobs run at once."""
    queues: frozenset[str] | None = None
    """Only jobs of these (logical) queues; ``None``: every job the transport delivers."""
    heartbeat_interval: float = HEARTBEAT_CAP_SECONDS
    """Seconds between heartbeats (and visibility extensions) of each running job."""
    visibility_timeout: float | None = None
    """Seconds a received message stays invisible between extensions; default three
    heartbeat intervals (at least 10 s)."""
    receive_wait: float = MAX_WAIT_SECONDS
    """Long-poll seconds per receive."""
    grace: float = 25.0
    """Seconds running jobs may take to finish once a drain starts; then they are
    interrupted and reported failed (``worker shutting down``)."""
    report_timeout: float = 60.0
    """Seconds a completion or failure is retried while the ledger does not answer."""
    mismatch_delay: float = 5.0
    """Seconds a message of another queue is hidden before others may receive it."""
    worker_id: str = field(default_factory=default_worker_id)
    batch_claims: bool = True
    """On the local queue, claim up to N jobs in one call and report them in batches when
    the ledger can (ADR 155); ``False``: receive, claim, report, delete one by one."""

    def __post_init__(self) -> None:
        _check(self.concurrency >= 1, "concurrency must be at least 1")
        _check(_positive(self.heartbeat_interval), "heartbeat_interval must be positive")
        _check(_non_negative(self.grace), "grace must be zero or positive")
        _check(_non_negative(self.report_timeout), "report_timeout must be zero or positive")
        _check(0 <= self.receive_wait <= MAX_WAIT_SECONDS, "receive_wait must be 0..20 s")
        _check(_non_negative(self.mismatch_delay), "mismatch_delay must be zero or positive")
        _check(
            self.visibility_timeout is None
            or 0 < self.visibility_timeout <= MAX_VISIBILITY_SECONDS,
            "visibility_timeout must be 0..43200 s",
        )
        _check(0 < len(self.worker_id) <= 200, "worker_id must be 1..200 characters")
        _check(
            is_storable(self.worker_id) and not _CONTROL.search(self.worker_id),
            "worker_id must hold no control character, lone surrogate, U+FFFE or U+FFFF",
        )

    @property
    def visibility(self) -> float:
        if self.visibility_timeout is not None:
            return self.visibility_timeout
        wanted = max(3 * self.heartbeat_interval, MIN_VISIBILITY_SECONDS)
        return min(MAX_VISIBILITY_SECONDS, wanted)

    @classmethod
    def for_settings(cls, settings: Settings, **overrides: Any) -> WorkerConfig:
        """The defaults for ``settings`` (heartbeat interval from the stale threshold)."""
        if overrides.get("heartbeat_interval") is None:
            overrides["heartbeat_interval"] = default_heartbeat_interval(
                settings.stale_threshold.total_seconds()
            )
        return cls(**{k: v for k, v in overrides.items() if v is not None})


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise ValueError(reason)
