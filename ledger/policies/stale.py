"""The stale rule: an attempt in progress whose worker has been silent too long.

Pure: rows, ``now`` and the threshold in, decisions out. The stale monitor, the
``ledger stale scan --dry-run`` report, ``/health``'s stale count and the job's own
re-check (:meth:`ledger.job.Job.detect_stale`) all judge by :func:`is_stale`; the views
ask their index for heartbeats before :func:`stale_cutoff`, which is the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from ledger.status import Status


def stale_cutoff(now: datetime, threshold: timedelta) -> datetime:
    """The instant a heartbeat must be older than for its attempt to be stale at ``now``."""
    return now - threshold


def is_stale(last_heartbeat_at: datetime, now: datetime, threshold: timedelta) -> bool:
    """True when the worker has been silent for longer than ``threshold`` at ``now``."""
    return last_heartbeat_at < stale_cutoff(now, threshold)


def silence(worker_id: str, last_heartbeat_at: datetime) -> str:
    """The error a stale attempt leaves on its job."""
    return f"stale: no heartbeat from {worker_id} since {last_heartbeat_at.isoformat()}"


@dataclass(frozen=True, slots=True)
class StaleCandidate:
    """An attempt as a view (or the job itself) has it."""

    job_id: UUID
    attempt: int
    status: str
    worker_id: str | None
    last_heartbeat_at: datetime
    """The attempt's last heartbeat (its claim when it has sent none)."""


@dataclass(frozen=True, slots=True)
class StaleDecision:
    """Attempt ``attempt`` of ``job_id`` is stale, and the evidence for it."""

    job_id: UUID
    attempt: int
    worker_id: str | None
    last_heartbeat_at: datetime
    threshold: timedelta
    silent_for: timedelta


def stale_decisions(
    rows: Iterable[StaleCandidate], now: datetime, threshold: timedelta
) -> list[StaleDecision]:
    """The rows' attempts that are in progress and stale at ``now``, in the rows' order."""
    return [
        StaleDecision(
            row.job_id, row.attempt, row.worker_id, row.last_heartbeat_at, threshold,
            now - row.last_heartbeat_at,
        )
        for row in rows
        if row.status == Status.IN_PROGRESS and is_stale(row.last_heartbeat_at, now, threshold)
    ]
