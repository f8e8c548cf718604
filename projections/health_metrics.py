"""``health_metrics``: what ``/health`` needs, per queue, without scanning anything.

- ``health_queues``: how many jobs are pending, in progress, completed and dead-lettered
  now (counters moved on every status change, so reading them is one row per queue);
- ``health_daily``: per UTC day and queue, how many jobs were enqueued, completed, failed
  (an attempt failed), went stale, were dead-lettered and redriven;
- ``health_workers``: when each worker was last heard of, per queue ("active" is a
  question with a clock in it: last seen within a window, asked through an index);
- ``health_jobs``: each job's queue, status and last heartbeat: what the counters move
  from, and (through a partial index on in-progress jobs) the stale count for a threshold.
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.events import (
    Cancelled,
    Claimed,
    Completed,
    DeadLettered,
    Enqueued,
    Event,
    Failed,
    HeartbeatRecorded,
    Redriven,
    Released,
    ReportRefused,
    Requeued,
    StaleDetected,
)
from projections.model import Column, Index, Key, Kind, PageState, Row, Table, View

HEALTH_JOBS = Table(
    name="health_jobs",
    kind=Kind.STATE,
    columns=(
        Column("job_id", "uuid", nullable=False),
        Column("queue", "text", nullable=False),
        Column("status", "text", nullable=False),
        Column("last_heartbeat_at", "timestamp"),
    ),
    key=("job_id",),
    indexes=(
        Index("in_progress_idx", ("last_heartbeat_at", "queue"), where=("status", "in_progress")),
    ),
)

STATUSES = ("pending", "in_progress", "completed", "dead_lettered", "scheduled", "cancelled")

HEALTH_QUEUES = Table(
    name="health_queues",
    kind=Kind.COUNTER,
    columns=(
        Column("queue", "text", nullable=False),
        *(Column(status, "int", nullable=False) for status in STATUSES),
    ),
    key=("queue",),
)

DAILY = ("enqueued", "completed", "failed", "stale", "dead_lettered", "redriven", "cancelled")

HEALTH_DAILY = Table(
    name="health_daily",
    kind=Kind.COUNTER,
    columns=(
        Column("day", "date", nullable=False),
        Column("queue", "text", nullable=False),
        *(Column(name, "int", nullable=False) for name in DAILY),
    ),
    key=("day", "queue"),
)

HEALTH_WORKERS = Table(
    name="health_workers",
    kind=Kind.STATE,
    columns=(
        Column("worker_id", "text", nullable=False),
        Column("queue", "text", nullable=False),
        Column("last_seen_at", "timestamp", nullable=False),
    ),
    key=("worker_id", "queue"),
    indexes=(Index("seen_idx", ("last_seen_at",)),),
)


def _move(state: PageState, job: Row, status: str) -> None:
    old = job["status"]
    if old != status:
        state.add(HEALTH_QUEUES, (job["queue"],), **{old: -1, status: 1})
        job["status"] = status


def _daily(state: PageState, event: Event, queue: str, counter: str) -> None:
    state.add(HEALTH_DAILY, (event.at.date(), queue), **{counter: 1})


def _seen(state: PageState, event: Event, worker_id: str, queue: str) -> None:
    state.put(HEALTH_WORKERS, (worker_id, queue), {
        "worker_id": worker_id, "queue": queue, "last_seen_at": event.at,
    })


class HealthMetricsView(View):
    name = "health_metrics"
    tables = (HEALTH_JOBS, HEALTH_QUEUES, HEALTH_DAILY, HEALTH_WORKERS)

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        updates = self.updates
        return {HEALTH_JOBS.name: {(e.originator_id,) for e in events if type(e.body) in updates}}

    def enqueued(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Enqueued)
        status = "pending" if body.run_at is None else "scheduled"
        state.create(HEALTH_JOBS, (event.originator_id,), {
            "job_id": event.originator_id, "queue": body.queue, "status": status,
            "last_heartbeat_at": None,
        })
        state.add(HEALTH_QUEUES, (body.queue,), **{status: 1})
        _daily(state, event, body.queue, "enqueued")

    def claimed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Claimed)
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _move(state, job, "in_progress")
        job["last_heartbeat_at"] = event.at
        _seen(state, event, body.worker_id, job["queue"])

    def heartbeat(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, HeartbeatRecorded)
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        job["last_heartbeat_at"] = event.at
        _seen(state, event, body.worker_id, job["queue"])

    def completed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Completed)
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _move(state, job, "completed")
        _daily(state, event, job["queue"], "completed")
        _seen(state, event, body.worker_id, job["queue"])

    def failed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Failed)
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _move(state, job, "pending")
        _daily(state, event, job["queue"], "failed")
        _seen(state, event, body.worker_id, job["queue"])

    def stale(self, event: Event, state: PageState) -> None:
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _move(state, job, "pending")
        _daily(state, event, job["queue"], "stale")

    def requeued(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Requeued)
        status = "pending" if body.not_before is None else "scheduled"
        _move(state, state.get(HEALTH_JOBS, (event.originator_id,)), status)

    def released(self, event: Event, state: PageState) -> None:
        _move(state, state.get(HEALTH_JOBS, (event.originator_id,)), "pending")

    def cancelled(self, event: Event, state: PageState) -> None:
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _move(state, job, "cancelled")
        _daily(state, event, job["queue"], "cancelled")

    def dead_lettered(self, event: Event, state: PageState) -> None:
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _move(state, job, "dead_lettered")
        _daily(state, event, job["queue"], "dead_lettered")

    def redriven(self, event: Event, state: PageState) -> None:
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _move(state, job, "pending")
        _daily(state, event, job["queue"], "redriven")

    def refused(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ReportRefused)
        job = state.get(HEALTH_JOBS, (event.originator_id,))
        _seen(state, event, body.worker_id, job["queue"])

    handlers = {  # noqa: RUF012 - read-only dispatch table
        Enqueued: enqueued,
        Claimed: claimed,
        HeartbeatRecorded: heartbeat,
        Completed: completed,
        Failed: failed,
        StaleDetected: stale,
        Requeued: requeued,
        DeadLettered: dead_lettered,
        Redriven: redriven,
        ReportRefused: refused,
        Released: released,
        Cancelled: cancelled,
    }
    updates = frozenset(handlers) - {Enqueued}
