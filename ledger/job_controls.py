"""The job's decisions from outside its attempt: the stale monitor's detection, the
transport's dead letters, alerts, redrives and the operator controls of ADR 100 (cancel,
release, requeue).

A mixin of :class:`ledger.job.Job` (kept apart so the model stays readable); the rules are
pure functions in :mod:`ledger.policies`. Time is an argument, as everywhere in the model.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from ledger.commands import CancelJob, ReleaseJob, ReportCancelled, RequeueJob
from ledger.errors import NotStale
from ledger.policies.alerts import check_alert
from ledger.policies.controls import (
    CancelStep,
    cancel_step,
    check_cancel_report,
    check_release,
    check_requeue,
)
from ledger.policies.dead_letters import check_queue_dead_letter, check_redrive
from ledger.policies.stale import is_stale
from ledger.status import Status

if TYPE_CHECKING:
    from ledger.job import Job


def apply_job_control(
    job: Job, command: CancelJob | ReportCancelled | ReleaseJob | RequeueJob,
    now: datetime,
) -> None:
    """Decide an operator's (or the scheduler's, or a cancelled worker's) command."""
    match command:
        case CancelJob():
            job.cancel(command.actor, now, command.reason, command.action_id)
        case ReportCancelled():
            job.report_cancelled(command.attempt, command.worker_id, now)
        case ReleaseJob():
            job.release(now)
        case RequeueJob():
            job.requeue(command.actor, now, command.reason, command.action_id)


class _Job(Protocol):
    """What these decisions read of the job, and the events they append."""

    @property
    def event_classes(self) -> Any:
        """The job's class: its nested events (``Cancelled``, ``Requeued``, ...)."""
        ...

    status: Status
    attempt: int
    not_before: datetime | None
    last_error: str | None
    dead_letter_version: int | None
    alerted_version: int | None
    cancel_requested: bool
    worker_id: str | None
    claimed_at: datetime | None
    last_heartbeat_at: datetime | None
    cancel_actor: str | None
    cancel_reason: str | None

    @property
    def id(self) -> UUID: ...

    @property
    def attempts_used(self) -> int: ...

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...

    def check_report(self, attempt: int, worker_id: str, report: str) -> None: ...

    def _cancelled(self, now: datetime, by: str) -> None: ...

    def _after_attempt(
        self, now: datetime, retry_delay: timedelta | None, reason: str, cancelled_by: str
    ) -> None: ...


class JobControls:
    """Decisions of :class:`ledger.job.Job` taken from outside the running attempt."""

    def detect_stale(
        self: _Job, attempt: int, threshold: timedelta, now: datetime,
        retry_delay: timedelta | None, detected_by: str,
    ) -> None:
        """Declare ``attempt`` stale if, judged by the ledger's own record, it is.

        The caller saw the job stale in a view that may lag; this re-decides against
        the job itself and raises :class:`NotStale` when it has moved on.
        """
        if self.status != Status.IN_PROGRESS or attempt != self.attempt:
            raise NotStale(self.id, f"attempt {attempt} is no longer in progress")
        last = self.last_heartbeat_at or self.claimed_at
        assert last is not None
        assert self.worker_id is not None
        if not is_stale(last, now, threshold):
            raise NotStale(self.id, f"last heartbeat at {last.isoformat()}")
        self.trigger_event(
            self.event_classes.StaleDetected, timestamp=now, attempt=attempt,
            worker_id=self.worker_id, last_heartbeat_at=last,
            threshold_seconds=threshold.total_seconds(), detected_by=detected_by,
        )
        self._after_attempt(now, retry_delay, reason="stale", cancelled_by="stale")


    def dead_letter_from_queue(
        self: _Job, message_id: str, receive_count: int, now: datetime,
        message_attempt: int | None = None, max_receives: int | None = None,
    ) -> None:
        """Record that the transport gave up on the job's message (its dead-letter queue)
        after workers received it ``receive_count`` times; an old copy is refused. The
        reason names the queue's configured ``max_receives`` when known (on SQS, reading
        the dead-letter queue raises the receive count above it)."""
        check_queue_dead_letter(self.id, self.status, self.attempt, message_attempt)
        self.trigger_event(
            self.event_classes.DeadLettered, timestamp=now, attempt=self.attempt,
            reason=f"message exceeded the queue's max receives ({max_receives or receive_count})",
            attempts_used=self.attempts_used, last_error=self.last_error,
            source="sqs_dlq", message_id=message_id,
        )

    def record_alert(
        self: _Job, dead_letter_version: int, channel: str, now: datetime, *,
        delivery_id: str | None = None, failure: str | None = None,
    ) -> None:
        """Record the one alert of the dead letter at ``dead_letter_version``."""
        check_alert(
            self.id, self.status, dead_letter_version,
            last_dead_letter=self.dead_letter_version, alerted_version=self.alerted_version,
        )
        if failure is None:
            self.trigger_event(
                self.event_classes.AlertSent, timestamp=now,
                dead_letter_version=dead_letter_version, delivery_id=delivery_id or "",
                channel=channel,
            )
        else:
            self.trigger_event(
                self.event_classes.AlertFailed, timestamp=now,
                dead_letter_version=dead_letter_version, reason=failure, channel=channel,
            )

    def redrive(
        self: _Job, actor: str, now: datetime, reason: str | None = None,
        action_id: str | None = None,
    ) -> None:
        """Give a dead-lettered job a fresh attempt budget and make it pending."""
        dead_letter = check_redrive(self.id, self.status, self.dead_letter_version)
        self.trigger_event(
            self.event_classes.Redriven, timestamp=now, dead_letter_version=dead_letter,
            actor=actor, reason=reason, action_id=action_id,
        )

    # -- operator controls (ADR 100; the rules are ledger.policies.controls) ----------

    def cancel(
        self: _Job, actor: str, now: datetime, reason: str | None = None,
        action_id: str | None = None,
    ) -> None:
        """Cancel at once, or request the running attempt's end (a repeat does nothing)."""
        step = cancel_step(self.id, self.status, self.cancel_requested)
        events = self.event_classes
        event = {CancelStep.CANCEL: events.Cancelled, CancelStep.REQUEST: events.CancelRequested}
        if step in event:
            by = {"by": "operator"} if step == CancelStep.CANCEL else {}
            self.trigger_event(event[step], timestamp=now, attempt=self.attempt, actor=actor,
                               reason=reason, action_id=action_id, **by)

    def report_cancelled(self: _Job, attempt: int, worker_id: str, now: datetime) -> None:
        """The attempt's worker stopped its handler after a cancel request."""
        self.check_report(attempt, worker_id, "cancelled")
        check_cancel_report(self.id, self.cancel_requested, self.status)
        self._cancelled(now, by="worker")

    def _cancelled(self: _Job, now: datetime, by: str) -> None:
        self.trigger_event(self.event_classes.Cancelled, timestamp=now, attempt=self.attempt,
                           actor=self.cancel_actor or by, by=by, reason=self.cancel_reason)

    def release(self: _Job, now: datetime) -> None:
        """A scheduled job is due: make it pending (the scheduler's round)."""
        check_release(self.id, self.status, self.not_before, now)
        self.trigger_event(self.event_classes.Released, timestamp=now, reason="due")

    def requeue(self: _Job, actor: str, now: datetime, reason: str | None = None,
                action_id: str | None = None) -> None:
        """An operator makes a scheduled or stuck running job pending now."""
        check_requeue(self.id, self.status)
        self.trigger_event(self.event_classes.Requeued, timestamp=now, attempt=self.attempt,
                           reason=reason or "operator", not_before=None, actor=actor,
                           action_id=action_id)
