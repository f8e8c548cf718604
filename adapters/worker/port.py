"""The worker's port to the ledger: claim, heartbeat, complete, fail.

Two adapters implement it: :class:`~adapters.worker.inprocess.InProcessLedger` (the
ledger in this process, through a batch writer) and
:class:`~adapters.worker.http_client.HttpLedger` (the HTTP API with an API key). Both
speak the ledger's own errors, so the worker decides the same way on either:

- ``claim`` raises :class:`~ledger.errors.IllegalTransition` when the job is not pending
  (a duplicate or obsolete message), :class:`~ledger.errors.JobNotDue` when its retry
  delay has not passed, :class:`~ledger.errors.JobNotFound` for an unknown job;
- ``complete``, ``fail`` and ``cancelled`` raise :class:`~ledger.errors.AttemptSuperseded`
  when the attempt is no longer current (HTTP 409); nothing was applied;
- a heartbeat answered :attr:`Beat.CANCEL_REQUESTED` (an operator cancelled the running
  job, ADR 100) makes the worker cancel the handler and report ``cancelled``;
- anything else (:class:`LedgerUnavailable`, ...) means the answer is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

import msgspec

from ledger.errors import LedgerError


class ClaimedJob(msgspec.Struct, frozen=True):
    """An attempt opened for this worker, with what the handler needs."""

    job_id: UUID
    attempt: int
    payload: Any = None
    traceparent: str | None = None
    """The producer's trace context recorded at enqueue: the attempt's span's parent."""


class Beat(StrEnum):
    """What became of one heartbeat."""

    RECORDED = "recorded"
    SUPERSEDED = "superseded"
    """The attempt is no longer current (or the job is gone): stop working on it."""
    UNKNOWN = "unknown"
    """No answer (the ledger was unreachable): try again at the next beat."""
    CANCEL_REQUESTED = "cancel_requested"
    """Recorded, and the job was cancelled: stop the handler and report ``cancelled``."""


class LedgerUnavailable(LedgerError):
    """The ledger did not answer (unreachable, timed out or failing); try again later."""

    code = "ledger_unavailable"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class WorkerAccessDenied(LedgerError):
    """The API refused the worker's key (missing, unknown, or not a worker's role)."""

    code = "worker_access_denied"


class BatchClaimsUnsupported(LedgerError):
    """The ledger cannot claim from the local queue in one round trip (not on PostgreSQL,
    or an API without ``POST /workers/claims``): receive, then claim (ADR 155)."""

    code = "batch_claims_unsupported"


class LedgerPort(Protocol):
    """How a worker talks to the ledger (async: workers are)."""

    async def claim(self, job_id: UUID, worker_id: str) -> ClaimedJob:
        """Open the job's next attempt for ``worker_id``."""
        ...

    async def heartbeats(
        self, worker_id: str, attempts: Sequence[tuple[UUID, int]]
    ) -> dict[UUID, Beat]:
        """Record a heartbeat of each ``(job_id, attempt)``; one answer per job."""
        ...

    async def complete(self, job_id: UUID, attempt: int, worker_id: str, result: Any) -> str:
        """Report the attempt completed with ``result`` (JSON); return the job's status."""
        ...

    async def fail(
        self, job_id: UUID, attempt: int, worker_id: str, error: str, *, normalised: bool = False
    ) -> str:
        """Report the attempt failed; return the job's status (``pending`` when it will be
        retried, ``dead_lettered`` when out of attempts). ``normalised``: the worker made
        ``error`` storable (:func:`ledger.text.normalise`); the event says so."""
        ...

    async def cancelled(self, job_id: UUID, attempt: int, worker_id: str) -> str:
        """Report that the handler of a cancel-requested attempt stopped (``ReportCancelled``);
        return the job's status (``cancelled``)."""
        ...

    def requested_cancels(self, attempts: Sequence[tuple[UUID, int]]) -> set[UUID]:
        """The jobs among ``attempts`` this process already knows were asked to stop,
        without I/O (in-process: the ledger's cache; over HTTP: none, the heartbeat
        answer says it)."""
        ...

    async def poll_cancels(self, worker_id: str, attempts: Sequence[tuple[UUID, int]]) -> set[UUID]:
        """The jobs among ``attempts`` the ledger holds as asked to stop, between
        heartbeats (over HTTP: ``POST /workers/cancels``, one read; in-process: as
        :meth:`requested_cancels`). Never raises: an unknown answer is no job."""
        ...

    async def aclose(self) -> None:
        """Release what the adapter holds."""
        ...
