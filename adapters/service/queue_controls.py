"""Queues as operators see them: paused (by whom, why, since), the cap, running and
waiting jobs (the commands are ``JobLedger.control_queue``'s)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from ledger.application import JobLedger
from projections.queries.queue_controls import QueueControlQueries
from projections.queries.queue_names import QueueJobs, queues_with_jobs
from projections.store import ViewStore


class QueueState(msgspec.Struct, frozen=True):
    """One queue's controls and jobs."""

    queue: str
    paused: bool = False
    paused_by: str | None = None
    paused_reason: str | None = None
    paused_at: datetime | None = None
    max_running: int | None = None
    running: int = 0
    """Jobs holding a slot of the cap (only counted for a controlled queue)."""
    pending: int = 0
    in_progress: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


def _names(store: ViewStore) -> tuple[dict[str, QueueJobs], set[str]]:
    """Queues with jobs (and their counts), and the queues an operator controlled."""
    counts = {q.queue: q for q in queues_with_jobs(store)}
    return counts, {q.queue for q in QueueControlQueries(store).all()}


def queue_states(
    ledger: JobLedger, read: Callable[[Callable[[ViewStore], Any]], Any],
    also: tuple[str, ...] = (),
) -> list[QueueState]:
    """Every queue with jobs or controls, and ``also`` these, by name; the controls as
    the ledger has them now (the view may lag a moment behind a pause)."""
    counts, controlled = read(_names)
    states = []
    for name in sorted(set(counts) | controlled | set(also)):
        jobs = counts.get(name)
        queue = ledger.get_queue(name)
        extra = {"pending": jobs.pending, "in_progress": jobs.in_progress} if jobs else {}
        if queue is None:
            states.append(QueueState(queue=name, **extra))
            continue
        states.append(QueueState(
            queue=name, paused=queue.paused, paused_by=queue.paused_by,
            paused_reason=queue.paused_reason, paused_at=queue.paused_at,
            max_running=queue.max_running, running=len(queue.running), **extra,
        ))
    return states
