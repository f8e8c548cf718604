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
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.errors import AttemptSuperseded, IllegalTransition, NotStale
from ledger.policies.alerts import check_alert
from ledger.policies.dead_letters import check_queue_dead_letter, check_redrive
from ledger.policies.fencing import check_report, refusal_reason
from ledger.policies.retry import Requeue, check_due, next_step
from ledger.policies.stale import is_stale, silence
from ledger.status import Status

JSON = Any
"""A JSON value (payloads and results are opaque to the ledger)."""


class Job(Aggregate):
    """One background job and everything that happened to it."""

    # -- events ---------------------------------------------------------------------

    class Enqueued(Aggregate.Created):
        """A job was accepted into a queue."""

        customer_id: str
        queue: str
        payload: JSON
        max_attempts: int
        idempotency_key: str | None

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
        """The job is pending again and will be sent to the transport."""

        attempt: int
        reason: str
        not_before: datetime | None

        def apply(self, job: Job) -> None:
            job.status = Status.PENDING
            job.not_before = self.not_before
            job.requeues += 1

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

    def __init__(
        self, customer_id: str, queue: str, payload: JSON, max_attempts: int,
        idempotency_key: str | None,
    ) -> None:
        self.customer_id = customer_id
        self.queue = queue
        self.payload = payload
        self.max_attempts = max_attempts
        self.idempotency_key = idempotency_key
        self.status = Status.PENDING
        self.attempt = 0
        self.budget_base = 0
        self.worker_id: str | None = None
        """The worker of the latest attempt (kept after the attempt ends)."""
        self.claimed_at: datetime | None = None
        self.last_heartbeat_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.not_before: datetime | None = None
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
        """A private copy for deciding on: own pending events, shared immutable values.

        Every attribute is an immutable value except ``payload`` and ``result`` (JSON the
        ledger never mutates) and the pending-events list, which each copy gets afresh
        (the generic deep copy is slow).
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__["_pending_events"] = list(self._pending_events)
        return clone

    @property
    def attempts_used(self) -> int:
        """Attempts opened since enqueue or the last redrive."""
        return self.attempt - self.budget_base

    @property
    def enqueued_at(self) -> datetime:
        return self.created_on

    # -- decisions ------------------------------------------------------------------

    @classmethod
    def enqueue(
        cls, *, job_id: UUID, customer_id: str, queue: str, payload: JSON, max_attempts: int,
        idempotency_key: str | None, now: datetime,
    ) -> Job:
        return cls._create(
            cls.Enqueued, id=job_id, timestamp=now, customer_id=customer_id, queue=queue,
            payload=payload, max_attempts=max_attempts, idempotency_key=idempotency_key,
        )

    def claim(self, worker_id: str, now: datetime, worker_time: datetime | None = None) -> int:
        """Open attempt ``n + 1`` for ``worker_id`` and return its number."""
        if self.status != Status.PENDING:
            raise IllegalTransition(self.id, self.status, "claim")
        check_due(self.id, self.not_before, now)
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
        self._retry_or_dead_letter(now, retry_delay, reason="failed")

    def detect_stale(
        self, attempt: int, threshold: timedelta, now: datetime, retry_delay: timedelta | None,
        detected_by: str,
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
            self.StaleDetected, timestamp=now, attempt=attempt, worker_id=self.worker_id,
            last_heartbeat_at=last, threshold_seconds=threshold.total_seconds(),
            detected_by=detected_by,
        )
        self._retry_or_dead_letter(now, retry_delay, reason="stale")

    def _retry_or_dead_letter(
        self, now: datetime, retry_delay: timedelta | None, reason: str
    ) -> None:
        """Record the retry policy's :func:`~ledger.policies.retry.next_step`."""
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

    def dead_letter_from_queue(
        self, message_id: str, receive_count: int, now: datetime,
        message_attempt: int | None = None, max_receives: int | None = None,
    ) -> None:
        """Record that the transport gave up on the job's message (its dead-letter queue)
        after workers received it ``receive_count`` times; an old copy is refused. The
        reason names the queue's configured ``max_receives`` when known (on SQS, reading
        the dead-letter queue raises the receive count above it)."""
        check_queue_dead_letter(self.id, self.status, self.attempt, message_attempt)
        self.trigger_event(
            self.DeadLettered, timestamp=now, attempt=self.attempt,
            reason=f"message exceeded the queue's max receives ({max_receives or receive_count})",
            attempts_used=self.attempts_used, last_error=self.last_error,
            source="sqs_dlq", message_id=message_id,
        )

    def record_alert(
        self, dead_letter_version: int, channel: str, now: datetime, *,
        delivery_id: str | None = None, failure: str | None = None,
    ) -> None:
        """Record the one alert of the dead letter at ``dead_letter_version``."""
        check_alert(
            self.id, self.status, dead_letter_version,
            last_dead_letter=self.dead_letter_version, alerted_version=self.alerted_version,
        )
        if failure is None:
            self.trigger_event(
                self.AlertSent, timestamp=now, dead_letter_version=dead_letter_version,
                delivery_id=delivery_id or "", channel=channel,
            )
        else:
            self.trigger_event(
                self.AlertFailed, timestamp=now, dead_letter_version=dead_letter_version,
                reason=failure, channel=channel,
            )

    def redrive(self, actor: str, now: datetime) -> None:
        """Give a dead-lettered job a fresh attempt budget and make it pending."""
        dead_letter = check_redrive(self.id, self.status, self.dead_letter_version)
        self.trigger_event(
            self.Redriven, timestamp=now, dead_letter_version=dead_letter, actor=actor
        )
