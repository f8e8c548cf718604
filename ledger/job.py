"""The job aggregate: its events, its state, and the decisions that append them.

Every method that changes a job is a decision: it checks the job's state against the
input and either triggers exactly the events the transition needs or raises a named
error from :mod:`ledger.errors` without touching the job. Time is always an argument
(``now`` is the ledger's recording time; ``worker_time`` is what the worker reported).
The rules the decisions share with the monitors and the views (attempt fencing, stale,
retry or dead letter, alerts) are pure functions in :mod:`ledger.policies`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.errors import AttemptSuperseded
from ledger.job_controls import JobControls
from ledger.job_creation import enqueued_job, job_from_enqueued
from ledger.policies.controls import claim_releases, status_after_requeue
from ledger.policies.fencing import check_report, refusal_reason
from ledger.policies.retry import Requeue, next_step
from ledger.policies.stale import silence
from ledger.status import Status

JSON = Any
"""A JSON value (payloads and results are opaque to the ledger)."""


class Job(Aggregate, JobControls):
    """One background job and everything that happened to it."""

    # -- events ---------------------------------------------------------------------

    class Enqueued(Aggregate.Created):
        """A job was accepted into a queue."""

        customer_id: str
        queue: str
        payload: JSON
        max_attempts: int
        idempotency_key: str | None
        priority: int = 0
        run_at: datetime | None = None
        """When the job becomes due (set only when after the recording time: scheduled)."""
        traceparent: str | None = None
        """The producer's W3C trace context, as data (ADR 125)."""

        def mutate(self, aggregate: Any) -> Any:
            return job_from_enqueued(self) if aggregate is None else super().mutate(aggregate)

    class Claimed(Aggregate.Event):
        """A worker claimed the job, opening a new attempt."""

        attempt: int
        worker_id: str
        worker_time: datetime | None

        def apply(self, job: Job) -> None:
            job.status = Status.IN_PROGRESS
            job.attempt = self.attempt
            job.worker_id = self.worker_id
            job.claimed_at = self.timestamp
            job.last_heartbeat_at = self.timestamp
            job.not_before = None
            job.cancel_requested = False

    class HeartbeatRecorded(Aggregate.Event):
        """The worker of the current attempt said it is still alive."""

        attempt: int
        worker_id: str
        worker_time: datetime | None

        def apply(self, job: Job) -> None:
            job.last_heartbeat_at = self.timestamp
            job.heartbeats += 1

    class Completed(Aggregate.Event):
        """The current attempt finished successfully."""

        attempt: int
        worker_id: str
        result: JSON
        worker_time: datetime | None

        def apply(self, job: Job) -> None:
            job.status = Status.COMPLETED
            job.finished_at = self.timestamp
            job.result = self.result

    class Failed(Aggregate.Event):
        """The current attempt failed; a requeue or dead letter follows."""

        attempt: int
        worker_id: str
        error: str
        worker_time: datetime | None
        error_normalised: bool = False

        def apply(self, job: Job) -> None:
            job.status = Status.PENDING
            job.last_error = self.error
            job.failures += 1

    class StaleDetected(Aggregate.Event):
        """The current attempt stopped heartbeating; a requeue or dead letter follows."""

        attempt: int
        worker_id: str
        last_heartbeat_at: datetime
        threshold_seconds: float
        detected_by: str

        def apply(self, job: Job) -> None:
            job.status = Status.PENDING
            job.last_error = silence(self.worker_id, self.last_heartbeat_at)
            job.stalls += 1

    class Requeued(Aggregate.Event):
        """The job is pending again (scheduled until ``not_before`` when set)."""

        attempt: int
        reason: str
        not_before: datetime | None
        actor: str | None = None
        """Set for an operator's requeue (``None``: the retry policy's)."""
        action_id: str | None = None

        def apply(self, job: Job) -> None:
            job.status = status_after_requeue(self.not_before)
            job.not_before = self.not_before
            job.requeues += 1

    class Released(Aggregate.Event):
        """A scheduled job became due: pending, and sent to the transport."""

        reason: str = "due"

        def apply(self, job: Job) -> None:
            job.status = Status.PENDING
            job.not_before = None

    class CancelRequested(Aggregate.Event):
        """An operator cancelled a running job: its worker (or the stale policy) ends it."""

        attempt: int
        actor: str
        reason: str | None = None
        action_id: str | None = None

        def apply(self, job: Job) -> None:
            job.cancel_requested = True
            job.cancel_actor, job.cancel_reason = self.actor, self.reason

    class Cancelled(Aggregate.Event):
        """The job was cancelled (terminal); ``by`` is operator, worker or stale."""

        attempt: int
        actor: str
        by: str
        reason: str | None = None
        action_id: str | None = None

        def apply(self, job: Job) -> None:
            job.status = Status.CANCELLED
            job.finished_at = self.timestamp

    class DeadLettered(Aggregate.Event):
        """The job ran out of attempts (or was found in the dead-letter queue)."""

        attempt: int
        reason: str
        attempts_used: int
        last_error: str | None
        source: str
        message_id: str | None

        def apply(self, job: Job) -> None:
            job.status = Status.DEAD_LETTERED
            job.finished_at = self.timestamp
            job.dead_letter_version = self.originator_version

    class Redriven(Aggregate.Event):
        """An operator gave a dead-lettered job a fresh attempt budget."""

        dead_letter_version: int
        actor: str
        reason: str | None = None
        action_id: str | None = None

        def apply(self, job: Job) -> None:
            job.status = Status.PENDING
            job.budget_base = job.attempt
            job.finished_at = None
            job.not_before = None
            job.redrives += 1

    class AlertSent(Aggregate.Event):
        """The alert for the dead letter at ``dead_letter_version`` was delivered."""

        dead_letter_version: int
        delivery_id: str
        channel: str

        def apply(self, job: Job) -> None:
            job.alerted_version = self.dead_letter_version

    class AlertFailed(Aggregate.Event):
        """The alert for a dead letter could not be delivered and will not be retried."""

        dead_letter_version: int
        reason: str
        channel: str

        def apply(self, job: Job) -> None:
            job.alerted_version = self.dead_letter_version
            job.alert_failed = True

    class ReportRefused(Aggregate.Event):
        """A report from a superseded attempt was refused and not applied."""

        attempt: int
        worker_id: str
        report: str
        reason: str
        current_attempt: int
        worker_time: datetime | None

        def apply(self, job: Job) -> None:
            job.refused_reports += 1

    # -- state ----------------------------------------------------------------------

    priority = 0  # class defaults: jobs snapshotted before ADR 100 load without them
    cancel_requested = False
    cancel_actor: str | None = None
    cancel_reason: str | None = None
    traceparent: str | None = None

    def __init__(
        self, customer_id: str, queue: str, payload: JSON, max_attempts: int,
        idempotency_key: str | None, *, priority: int = 0, run_at: datetime | None = None,
        traceparent: str | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.queue = queue
        self.payload = payload
        self.max_attempts = max_attempts
        self.idempotency_key = idempotency_key
        self.priority = priority
        self.traceparent = traceparent
        self.status = Status.PENDING if run_at is None else Status.SCHEDULED
        self.attempt = 0
        self.budget_base = 0
        self.worker_id: str | None = None
        """The worker of the latest attempt (kept after the attempt ends)."""
        self.claimed_at: datetime | None = None
        self.last_heartbeat_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.not_before: datetime | None = run_at
        self.last_error: str | None = None
        self.result: JSON = None
        self.dead_letter_version: int | None = None
        self.alerted_version: int | None = None
        """The dead letter whose alert was delivered (or permanently failed)."""
        self.alert_failed = False
        self.heartbeats = 0
        self.failures = 0
        self.stalls = 0
        self.requeues = 0
        self.redrives = 0
        self.refused_reports = 0

    def __deepcopy__(self, memo: dict[int, object]) -> Job:
        """A private copy to decide on: its own pending events, every other value shared
        (immutable, or JSON the ledger never mutates); the generic deep copy is slow."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__["_pending_events"] = list(self._pending_events)
        return clone

    @property
    def attempts_used(self) -> int:
        """Attempts opened since enqueue or the last redrive."""
        return self.attempt - self.budget_base

    @property
    def event_classes(self) -> type[Job]:
        """The class whose nested events the decisions of :class:`JobControls` append."""
        return type(self)

    @property
    def enqueued_at(self) -> datetime:
        return self.created_on

    # -- decisions ------------------------------------------------------------------

    @classmethod
    def enqueue(
        cls, *, job_id: UUID, customer_id: str, queue: str, payload: JSON, max_attempts: int,
        idempotency_key: str | None, now: datetime, priority: int = 0,
        run_at: datetime | None = None, traceparent: str | None = None,
    ) -> Job:
        """``run_at`` (due time, from :func:`~ledger.policies.controls.scheduled_until`)
        makes the job scheduled until then. Built directly: ``ledger/job_creation.py``."""
        return cast(Job, enqueued_job(
            cls, job_id=job_id, now=now, customer_id=customer_id, queue=queue, payload=payload,
            max_attempts=max_attempts, idempotency_key=idempotency_key, priority=priority,
            run_at=run_at, traceparent=traceparent,
        ))

    def claim(self, worker_id: str, now: datetime, worker_time: datetime | None = None) -> int:
        """Open attempt ``n + 1`` for ``worker_id`` (releasing a due scheduled job first)."""
        if claim_releases(self.id, self.status, self.not_before, now):
            self.trigger_event(self.Released, timestamp=now, reason="due")
        attempt = self.attempt + 1
        self.trigger_event(
            self.Claimed, timestamp=now, attempt=attempt, worker_id=worker_id,
            worker_time=worker_time,
        )
        return attempt

    def check_report(self, attempt: int, worker_id: str, report: str) -> None:
        """Raise unless ``attempt`` is the current, open attempt of ``worker_id``."""
        check_report(
            self.id, attempt, worker_id, current_attempt=self.attempt, status=self.status,
            current_worker=self.worker_id,
        )

    def refuse_report(
        self, error: AttemptSuperseded, worker_id: str, report: str, now: datetime,
        worker_time: datetime | None = None,
    ) -> None:
        """Record that a report from a superseded attempt was refused."""
        self.trigger_event(
            self.ReportRefused, timestamp=now, attempt=error.attempt, worker_id=worker_id,
            report=report, reason=refusal_reason(error.attempt, self.attempt, self.status),
            current_attempt=self.attempt, worker_time=worker_time,
        )

    def heartbeat(
        self, attempt: int, worker_id: str, now: datetime, worker_time: datetime | None = None
    ) -> None:
        self.check_report(attempt, worker_id, "heartbeat")
        self.trigger_event(
            self.HeartbeatRecorded, timestamp=now, attempt=attempt, worker_id=worker_id,
            worker_time=worker_time,
        )

    def complete(
        self, attempt: int, worker_id: str, result: JSON, now: datetime,
        worker_time: datetime | None = None,
    ) -> None:
        self.check_report(attempt, worker_id, "complete")
        self.trigger_event(
            self.Completed, timestamp=now, attempt=attempt, worker_id=worker_id, result=result,
            worker_time=worker_time,
        )

    def fail(
        self, attempt: int, worker_id: str, error: str, now: datetime,
        retry_delay: timedelta | None, *, worker_time: datetime | None = None,
        error_normalised: bool = False,
    ) -> None:
        """Record the failure, then requeue after ``retry_delay`` or dead-letter.

        ``retry_delay`` is the retry policy's answer for this failure; ``None`` (or no
        attempts left) dead-letters the job.
        """
        self.check_report(attempt, worker_id, "fail")
        self.trigger_event(
            self.Failed, timestamp=now, attempt=attempt, worker_id=worker_id, error=error,
            worker_time=worker_time, error_normalised=error_normalised,
        )
        self._after_attempt(now, retry_delay, reason="failed", cancelled_by="worker")

    def _after_attempt(
        self, now: datetime, retry_delay: timedelta | None, reason: str, cancelled_by: str
    ) -> None:
        """After a failed or stale attempt: cancelled when a cancel was requested, else
        the retry policy's :func:`~ledger.policies.retry.next_step`."""
        if self.cancel_requested:
            self._cancelled(now, by=cancelled_by)
            return
        step = next_step(self.attempts_used, self.max_attempts, retry_delay, now)
        if isinstance(step, Requeue):
            self.trigger_event(
                self.Requeued, timestamp=now, attempt=self.attempt, reason=reason,
                not_before=step.not_before,
            )
            return
        self.trigger_event(
            self.DeadLettered, timestamp=now, attempt=self.attempt,
            reason=f"{reason}: attempts exhausted" if step.exhausted else reason,
            attempts_used=self.attempts_used, last_error=self.last_error,
            source="ledger", message_id=None,
        )
