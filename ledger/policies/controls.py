"""Operator controls on one job: cancel, delay and release, operator requeue (ADR 100).

Pure: the job's status (and its clock fields) and ``now`` in; what to record, or a named
error, out. The job model records the answer (:mod:`ledger.job`), the audit checks the
log obeys the same rules (:mod:`ledger.audit`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from ledger.errors import IllegalTransition, InvalidCommand
from ledger.policies.retry import check_due
from ledger.status import Status

CANCELLABLE_AT_ONCE = frozenset({Status.PENDING, Status.SCHEDULED})
"""A job no worker holds: a cancel ends it at once."""
REQUEUEABLE = frozenset({Status.SCHEDULED, Status.IN_PROGRESS})
"""What an operator requeue applies to: a scheduled job made due now, a stuck attempt
ended and the job made pending (a pending job already is; a finished one is redriven)."""
MAX_SCHEDULE_AHEAD = timedelta(days=366)
"""The furthest a job may be scheduled: ``delay_seconds``' bound, and ``run_at``'s (a time
further ahead, up to year 9999 in any zone, would not even fold into the views)."""


class CancelStep(StrEnum):
    """What a cancel does to a job in a given state."""

    CANCEL = "cancel"
    """``Cancelled(by="operator")`` at once."""
    REQUEST = "request"
    """``CancelRequested``: the attempt's worker ends it (or the stale policy does)."""
    NOTHING = "nothing"
    """A cancel is already requested: the first request stands, nothing is appended."""


def cancel_step(job_id: UUID, status: Status, cancel_requested: bool) -> CancelStep:
    """What cancelling the job does; a finished job refuses (:class:`IllegalTransition`)."""
    if status in CANCELLABLE_AT_ONCE:
        return CancelStep.CANCEL
    if status == Status.IN_PROGRESS:
        return CancelStep.NOTHING if cancel_requested else CancelStep.REQUEST
    raise IllegalTransition(job_id, status, "cancel")


def check_cancel_report(job_id: UUID, cancel_requested: bool, status: Status) -> None:
    """A worker may end its attempt as cancelled only when a cancel was requested
    (fencing, :func:`ledger.policies.fencing.check_report`, is checked first)."""
    if not cancel_requested:
        raise IllegalTransition(job_id, status, "report cancelled without a cancel request")


def scheduled_until(
    run_at: datetime | None, delay_seconds: float | None, now: datetime
) -> datetime | None:
    """When an enqueued job becomes due, or ``None`` when it is due at once.

    ``run_at`` and ``delay_seconds`` are exclusive (:class:`InvalidCommand`); a delay is
    counted from the ledger's ``now``; a time not after ``now`` is due at once, one more
    than :data:`MAX_SCHEDULE_AHEAD` after it is refused.
    """
    if run_at is not None and delay_seconds is not None:
        raise InvalidCommand("give run_at or delay_seconds, not both")
    if run_at is not None and run_at - now > MAX_SCHEDULE_AHEAD:
        raise InvalidCommand(
            f"run_at is more than {MAX_SCHEDULE_AHEAD.days} days ahead: {run_at.isoformat()}"
        )
    due = now + timedelta(seconds=delay_seconds) if delay_seconds is not None else run_at
    return due if due is not None and due > now else None


def claim_releases(job_id: UUID, status: Status, not_before: datetime | None,
                   now: datetime) -> bool:
    """Whether a claim must first release the job; raise unless it may be claimed now.

    A pending job is claimed (not before its ``not_before``, as before ADR 100); a
    scheduled job that is due is released and claimed in one decision, so a message sent
    early (or before a scheduler released it) still runs once due; others refuse.
    """
    if status not in (Status.PENDING, Status.SCHEDULED):
        raise IllegalTransition(job_id, status, "claim")
    check_due(job_id, not_before, now)
    return status == Status.SCHEDULED


def check_release(job_id: UUID, status: Status, not_before: datetime | None,
                  now: datetime) -> None:
    """Raise unless the job is scheduled and due at ``now``."""
    if status != Status.SCHEDULED:
        raise IllegalTransition(job_id, status, "release")
    check_due(job_id, not_before, now)


def check_requeue(job_id: UUID, status: Status) -> None:
    """Raise unless an operator may requeue the job (:data:`REQUEUEABLE`)."""
    if status not in REQUEUEABLE:
        raise IllegalTransition(job_id, status, "requeue")


def status_after_requeue(not_before: datetime | None) -> Status:
    """A requeue with a delay (a retry's backoff) is scheduled; without, pending."""
    return Status.PENDING if not_before is None else Status.SCHEDULED
