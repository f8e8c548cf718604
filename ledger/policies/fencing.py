"""Attempt fencing: which worker reports the ledger accepts, and why it refuses the rest.

Each claim opens attempt ``n + 1`` and every worker report names the attempt it belongs
to. A report for an attempt that has ended is refused with
:class:`~ledger.errors.AttemptSuperseded` and recorded as a ``Job.ReportRefused`` event
by the application, never applied. Pure: the job's current attempt, status and worker
in; a named error (or the reason recorded with a refusal) out.
"""

from __future__ import annotations

from uuid import UUID

from ledger.errors import AttemptSuperseded, UnknownAttempt
from ledger.status import Status


def check_report(
    job_id: UUID,
    attempt: int,
    worker_id: str,
    *,
    current_attempt: int,
    status: Status,
    current_worker: str | None,
) -> None:
    """Raise unless ``attempt`` is the current, open attempt of ``worker_id``.

    Raises :class:`UnknownAttempt` for an attempt that was never opened and
    :class:`AttemptSuperseded` for one that has ended (or belongs to another worker).
    """
    if attempt > current_attempt or attempt < 1:
        raise UnknownAttempt(job_id, attempt, current_attempt)
    if attempt < current_attempt or status != Status.IN_PROGRESS or worker_id != current_worker:
        raise AttemptSuperseded(job_id, attempt, current_attempt, status)


def refusal_reason(refused_attempt: int, current_attempt: int, status: Status) -> str:
    """Why a report for ``refused_attempt`` was refused, as its ``ReportRefused`` says."""
    if refused_attempt == current_attempt and status == Status.IN_PROGRESS:
        return "not the attempt's worker"
    return "superseded" if refused_attempt < current_attempt else f"attempt {status}"
