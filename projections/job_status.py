"""``job_status``: one row per job, as the policies, the API and ``ledger jobs`` ask for it.

Each handler mirrors the corresponding ``apply`` of :class:`ledger.job.Job`, so a job's row
says what the job says (a property test folds random histories both ways and compares).
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.events import (
    Cancelled,
    CancelRequested,
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
from projections.job_errors import ERROR_TEXTS, JOB_ERRORS, index_error
from projections.model import Column, Index, Key, Kind, PageState, Table, View

JOB_STATUS = Table(
    name="job_status",
    kind=Kind.STATE,
    columns=(
        Column("job_id", "uuid", nullable=False),
        Column("customer_id", "text", nullable=False),
        Column("queue", "text", nullable=False),
        Column("status", "text", nullable=False),
        Column("attempt", "int", nullable=False),
        Column("attempts_used", "int", nullable=False),
        Column("max_attempts", "int", nullable=False),
        Column("worker_id", "text"),  # the worker of the latest attempt, kept after it ends
        Column("enqueued_at", "timestamp", nullable=False),
        Column("started_at", "timestamp"),
        Column("last_heartbeat_at", "timestamp"),
        Column("finished_at", "timestamp"),
        Column("not_before", "timestamp"),
        Column("last_error", "text"),
        Column("heartbeats", "int", nullable=False),
        Column("refused_reports", "int", nullable=False),
        Column("version", "int", nullable=False),
        Column("updated_at", "timestamp", nullable=False),
        Column("priority", "int", nullable=False),
        Column("cancel_requested", "int", nullable=False),  # 1: the attempt was asked to stop
    ),
    key=("job_id",),
    indexes=(
        Index("in_progress_idx", ("last_heartbeat_at",), where=("status", "in_progress")),
        Index("customer_idx", ("customer_id", "enqueued_at", "job_id")),
        Index("dead_lettered_idx", ("finished_at", "job_id"), where=("status", "dead_lettered")),
        Index("status_idx", ("status", "enqueued_at", "job_id")),
        Index("scheduled_idx", ("not_before",), where=("status", "scheduled")),  # the scheduler
        Index("errors_idx", ("job_id",), where=("last_error", None)),  # error text, id order
    ),
)


def _stamp(row: dict[str, object], event: Event) -> None:
    row["version"] = event.originator_version
    row["updated_at"] = event.at


class JobStatusView(View):
    name = "job_status"
    tables = (JOB_STATUS, JOB_ERRORS, ERROR_TEXTS)

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        updates = self.updates
        return {JOB_STATUS.name: {(e.originator_id,) for e in events if type(e.body) in updates}}

    def enqueued(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Enqueued)
        at = event.at
        state.create(JOB_STATUS, (event.originator_id,), {
            "job_id": event.originator_id, "customer_id": body.customer_id,
            "queue": body.queue, "status": "pending" if body.run_at is None else "scheduled",
            "attempt": 0, "attempts_used": 0,
            "max_attempts": body.max_attempts, "worker_id": None, "enqueued_at": at,
            "started_at": None, "last_heartbeat_at": None, "finished_at": None,
            "not_before": body.run_at.at if body.run_at else None, "last_error": None,
            "heartbeats": 0, "refused_reports": 0, "version": event.originator_version,
            "updated_at": at, "priority": body.priority, "cancel_requested": 0,
        })

    def claimed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Claimed)
        row = state.get(JOB_STATUS, (event.originator_id,))
        at = event.at
        row["status"] = "in_progress"
        row["attempt"] = body.attempt
        row["attempts_used"] += 1
        row["worker_id"] = body.worker_id
        row["started_at"] = at
        row["last_heartbeat_at"] = at
        row["not_before"] = None
        row["cancel_requested"] = 0
        _stamp(row, event)

    def heartbeat(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["last_heartbeat_at"] = event.at
        row["heartbeats"] += 1
        _stamp(row, event)

    def completed(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "completed"
        row["finished_at"] = event.at
        _stamp(row, event)

    def failed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Failed)
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "pending"
        row["last_error"] = body.error
        index_error(state, event.originator_id, body.error)
        _stamp(row, event)

    def stale(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, StaleDetected)
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "pending"
        row["last_error"] = (
            f"stale: no heartbeat from {body.worker_id} since "
            f"{body.last_heartbeat_at.at.isoformat()}"
        )
        index_error(state, event.originator_id, row["last_error"])
        _stamp(row, event)

    def requeued(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Requeued)
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "pending" if body.not_before is None else "scheduled"
        row["not_before"] = body.not_before.at if body.not_before else None
        _stamp(row, event)

    def released(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "pending"
        row["not_before"] = None
        _stamp(row, event)

    def cancel_requested(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["cancel_requested"] = 1
        _stamp(row, event)

    def cancelled(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "cancelled"
        row["finished_at"] = event.at
        _stamp(row, event)

    def dead_lettered(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "dead_lettered"
        row["finished_at"] = event.at
        _stamp(row, event)

    def redriven(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["status"] = "pending"
        row["attempts_used"] = 0
        row["finished_at"] = None
        row["not_before"] = None
        _stamp(row, event)

    def refused(self, event: Event, state: PageState) -> None:
        row = state.get(JOB_STATUS, (event.originator_id,))
        row["refused_reports"] += 1
        _stamp(row, event)

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
        CancelRequested: cancel_requested,
        Cancelled: cancelled,
    }

    updates = frozenset(handlers) - {Enqueued}
    """Bodies that change an existing row (their job's row is loaded before the fold)."""
