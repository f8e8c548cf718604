"""A job command decided on its job: which of the job's methods a command calls, and the
outcome a caller is answered with. The application (``ledger/application.py``) loads,
batches and saves; this module only decides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ledger.commands import (
    AnyCommand,
    CancelJob,
    ClaimJob,
    CompleteJob,
    DetectStale,
    FailJob,
    Outcome,
    RecordAlert,
    RecordHeartbeat,
    RecordQueueDeadLetter,
    RedriveJob,
    ReleaseJob,
    ReportCancelled,
    RequeueJob,
)
from ledger.errors import InvalidCommand
from ledger.job import Job
from ledger.job_controls import apply_job_control
from ledger.policies.retry import RetryPolicy


def apply_command(
    job: Job, command: AnyCommand, now: datetime, *, retry_policy: RetryPolicy,
    draw: Callable[[], float], stale_threshold: timedelta,
) -> Outcome:
    """Decide ``command`` on ``job``: the job's own method records its events, or raises
    the ledger's error that refuses it. ``draw`` is the retry backoff's jitter."""
    match command:
        case ClaimJob():
            job.claim(command.worker_id, now, command.worker_time)
        case RecordHeartbeat():
            job.heartbeat(command.attempt, command.worker_id, now, command.worker_time)
        case CompleteJob():
            job.complete(
                command.attempt, command.worker_id, command.result, now, command.worker_time
            )
        case FailJob():
            job.check_report(command.attempt, command.worker_id, "fail")
            delay = retry_policy.delay(job.attempts_used, job.max_attempts, draw())
            job.fail(
                command.attempt, command.worker_id, command.error, now, delay,
                worker_time=command.worker_time, error_normalised=command.error_normalised,
            )
        case DetectStale():
            delay = retry_policy.delay(job.attempts_used, job.max_attempts, draw())
            job.detect_stale(
                command.attempt, stale_threshold, now,
                delay, command.detected_by,
            )
        case RedriveJob():
            job.redrive(command.actor, now, command.reason, command.action_id)
        case RecordQueueDeadLetter():
            job.dead_letter_from_queue(
                command.message_id, command.receive_count, now, command.message_attempt,
                max_receives=command.max_receives,
            )
        case CancelJob() | ReportCancelled() | ReleaseJob() | RequeueJob():
            apply_job_control(job, command, now)
        case RecordAlert():
            job.record_alert(
                command.dead_letter_version, command.channel, now,
                delivery_id=command.delivery_id, failure=command.failure,
            )
        case _:  # pragma: no cover - the union is exhaustive
            raise InvalidCommand(f"unknown command {command!r}")
    return outcome_of(job)


def outcome_of(job: Job, *, created: bool = False) -> Outcome:
    """What a caller is answered with about ``job`` after a decision."""
    return Outcome(
        job_id=job.id, status=str(job.status), attempt=job.attempt, version=job.version,
        created=created, cancel_requested=job.cancel_requested, traceparent=job.traceparent,
    )
