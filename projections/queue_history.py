"""``queue_history``: one row per queue action, with actor and time: the audit trail.

Heartbeats are not queue actions and are left out; every other job event is one row,
keyed by its position in the log. The job's customer and queue are kept in a small state
table (``queue_history_jobs``) so every row carries them without reading another view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from projections.events import (
    Cancelled,
    CancelRequested,
    Claimed,
    Completed,
    DeadLettered,
    Enqueued,
    Event,
    Failed,
    Redriven,
    Released,
    ReportRefused,
    Requeued,
    StaleDetected,
)
from projections.model import Column, Index, Key, Kind, PageState, Table, View

QUEUE_HISTORY = Table(
    name="queue_history",
    kind=Kind.APPEND,
    columns=(
        Column("position", "int", nullable=False),
        Column("job_id", "uuid", nullable=False),
        Column("customer_id", "text", nullable=False),
        Column("queue", "text", nullable=False),
        Column("action", "text", nullable=False),
        Column("attempt", "int", nullable=False),
        Column("actor", "text", nullable=False),
        Column("reason", "text"),
        Column("detail", "text"),
        Column("recorded_at", "timestamp", nullable=False),
    ),
    key=("position",),
    indexes=(
        Index("job_idx", ("job_id", "position")),
        Index("queue_idx", ("queue", "position")),
        Index("customer_idx", ("customer_id", "position")),
    ),
)

QUEUE_HISTORY_JOBS = Table(
    name="queue_history_jobs",
    kind=Kind.STATE,
    columns=(
        Column("job_id", "uuid", nullable=False),
        Column("customer_id", "text", nullable=False),
        Column("queue", "text", nullable=False),
    ),
    key=("job_id",),
)

_encode = msgspec.json.encode


def _detail(**values: Any) -> str:
    return _encode(values).decode()


class QueueHistoryView(View):
    name = "queue_history"
    tables = (QUEUE_HISTORY, QUEUE_HISTORY_JOBS)

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        updates = self.updates
        return {
            QUEUE_HISTORY_JOBS.name: {
                (e.originator_id,) for e in events if type(e.body) in updates
            }
        }

    @staticmethod
    def _row(
        event: Event, state: PageState, action: str, attempt: int, actor: str, *,
        reason: str | None = None, detail: str | None = None,
    ) -> None:
        job = state.find(QUEUE_HISTORY_JOBS, (event.originator_id,))
        if job is None:
            state.get(QUEUE_HISTORY_JOBS, (event.originator_id,))  # raises Inconsistent
            return
        state.append(QUEUE_HISTORY, (
            event.position, event.originator_id, job["customer_id"], job["queue"], action,
            attempt, actor, reason, detail, event.at,
        ))

    def enqueued(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Enqueued)
        key = (event.originator_id,)
        state.create(QUEUE_HISTORY_JOBS, key, {
            "job_id": event.originator_id, "customer_id": body.customer_id, "queue": body.queue,
        })
        self._row(event, state, "enqueued", 0, body.customer_id,
                  detail=_detail(max_attempts=body.max_attempts))

    def claimed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Claimed)
        self._row(event, state, "claimed", body.attempt, body.worker_id)

    def completed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Completed)
        self._row(event, state, "completed", body.attempt, body.worker_id)

    def failed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Failed)
        self._row(event, state, "failed", body.attempt, body.worker_id, reason=body.error)

    def stale(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, StaleDetected)
        self._row(
            event, state, "stale_detected", body.attempt, body.detected_by,
            reason=f"no heartbeat for over {body.threshold_seconds:g}s",
            detail=_detail(worker_id=body.worker_id, last_heartbeat_at=body.last_heartbeat_at.iso,
                           threshold_seconds=body.threshold_seconds),
        )

    def requeued(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Requeued)
        self._row(
            event, state, "requeued", body.attempt, body.actor or "ledger", reason=body.reason,
            detail=_detail(not_before=body.not_before.iso if body.not_before else None,
                           action_id=body.action_id),
        )

    def dead_lettered(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, DeadLettered)
        self._row(
            event, state, "dead_lettered", body.attempt, body.source, reason=body.reason,
            detail=_detail(attempts_used=body.attempts_used, last_error=body.last_error),
        )

    def redriven(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Redriven)
        self._row(event, state, "redriven", 0, body.actor, reason=body.reason,
                  detail=_detail(dead_letter_version=body.dead_letter_version,
                                 action_id=body.action_id))

    def released(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Released)
        self._row(event, state, "released", 0, "ledger", reason=body.reason)

    def cancel_requested(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, CancelRequested)
        self._row(event, state, "cancel_requested", body.attempt, body.actor,
                  reason=body.reason, detail=_detail(action_id=body.action_id))

    def cancelled(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Cancelled)
        self._row(event, state, "cancelled", body.attempt, body.actor, reason=body.reason,
                  detail=_detail(by=body.by, action_id=body.action_id))

    def refused(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ReportRefused)
        self._row(
            event, state, "report_refused", body.attempt, body.worker_id, reason=body.reason,
            detail=_detail(report=body.report, current_attempt=body.current_attempt),
        )

    handlers = {  # noqa: RUF012 - read-only dispatch table
        Enqueued: enqueued,
        Claimed: claimed,
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
