"""The worker's port on a ledger in the same process, through a batch writer.

Every call is a command submitted to a :class:`~adapters.service.batching.BatchWriter`, so the
claims, heartbeats and reports of all the jobs a worker runs (and of anything else sharing
the writer, such as the HTTP API in ``ledger serve``) are committed together. The writer's
futures are awaited on the asyncio event loop (the backend every job-ledger service runs
on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import anyio
import anyio.to_thread

from adapters.local_queue.claims import ClaimedMessage, ClaimRequest
from adapters.service.batching import BatchWriter
from adapters.service.queue_claims import QueueClaims, queue_claims_for
from adapters.worker.port import BatchClaimsUnsupported, Beat, ClaimedJob, LedgerUnavailable
from ledger.application import JobLedger, Result
from ledger.commands import (
    AnyCommand,
    ClaimJob,
    CompleteJob,
    FailJob,
    Outcome,
    RecordHeartbeat,
    ReportCancelled,
)
from ledger.errors import (
    AttemptSuperseded,
    JobNotFound,
    LedgerError,
    StoreError,
    UnknownAttempt,
)

T = TypeVar("T")


class InProcessLedger:
    """:class:`~adapters.worker.port.LedgerPort` on a :class:`JobLedger` of this process."""

    def __init__(
        self,
        ledger: JobLedger,
        *,
        writer: BatchWriter | None = None,
        clock: Callable[[], datetime] | None = None,
        call_timeout: float = 30.0,
    ) -> None:
        """Use ``writer`` if given (it stays the caller's to close); else start one."""
        if writer is None:
            if clock is None:
                from adapters.service.bootstrap import utc_now

                clock = utc_now
            writer = BatchWriter(ledger, clock)
            self._owns_writer = True
        else:
            self._owns_writer = False
        self.ledger = ledger
        self.writer = writer
        self.call_timeout = call_timeout
        self.batch_claims = True
        """Claims and reports in batches on the local queue when on PostgreSQL (ADR 155)."""
        self._clock = clock
        self._claims: QueueClaims | bool | None = False  # False: not looked up yet

    async def claim(self, job_id: UUID, worker_id: str) -> ClaimedJob:
        outcome = _raise_error(await self._one(ClaimJob(job_id=job_id, worker_id=worker_id)))
        held, payload = self.ledger.held_payload(job_id)  # the claim just cached the job
        if not held:
            payload = await anyio.to_thread.run_sync(self.ledger.payload_of, job_id)
        return ClaimedJob(
            job_id=job_id, attempt=outcome.attempt, payload=payload,
            traceparent=outcome.traceparent,
        )

    async def claim_batch(self, request: ClaimRequest) -> list[ClaimedMessage]:
        """Claim up to ``request.limit`` jobs of the local queue in one transaction
        (ADR 155); :class:`BatchClaimsUnsupported` when the ledger is not on PostgreSQL."""
        if self._claims is False:
            from adapters.service.bootstrap import utc_now

            self._claims = queue_claims_for(self.ledger, self.writer, self._clock or utc_now)
        if not isinstance(self._claims, QueueClaims):
            raise BatchClaimsUnsupported()
        return await self._within_timeout(self._claims.claim(request))

    async def report_batch(
        self, reports: Sequence[tuple[AnyCommand, tuple[int, str] | None]], queue_name: str
    ) -> list[Result]:
        """Execute the reports in one transaction that also deletes the message of each
        one answered (ADR 155); one result per report."""
        claims = self._claims
        if not isinstance(claims, QueueClaims):
            raise BatchClaimsUnsupported()
        return await self._within_timeout(
            claims.report([c for c, _ in reports], [r for _, r in reports], queue_name)
        )

    async def report_and_claim(
        self, reports: Sequence[tuple[AnyCommand, tuple[int, str] | None]], queue_name: str,
        claim: ClaimRequest,
    ) -> tuple[list[Result], list[ClaimedMessage]]:
        """The reports, and up to ``claim.limit`` jobs claimed for the slots they free, in
        one transaction (ADR 155)."""
        claims = self._claims
        if not isinstance(claims, QueueClaims):
            raise BatchClaimsUnsupported()
        return await self._within_timeout(claims.report_and_claim(
            [c for c, _ in reports], [r for _, r in reports], queue_name, claim
        ))

    async def heartbeats(
        self, worker_id: str, attempts: Sequence[tuple[UUID, int]]
    ) -> dict[UUID, Beat]:
        commands: list[AnyCommand] = [
            RecordHeartbeat(job_id=job_id, attempt=attempt, worker_id=worker_id)
            for job_id, attempt in attempts
        ]
        try:
            results = await self._many(commands)
        except LedgerUnavailable:
            return {job_id: Beat.UNKNOWN for job_id, _ in attempts}
        return {
            job_id: _beat(result) for (job_id, _), result in zip(attempts, results, strict=True)
        }

    async def complete(self, job_id: UUID, attempt: int, worker_id: str, result: Any) -> str:
        command = CompleteJob(job_id=job_id, attempt=attempt, worker_id=worker_id, result=result)
        return _raise_error(await self._one(command)).status

    async def fail(
        self, job_id: UUID, attempt: int, worker_id: str, error: str, *, normalised: bool = False
    ) -> str:
        command = FailJob(
            job_id=job_id, attempt=attempt, worker_id=worker_id, error=error,
            error_normalised=normalised,
        )
        return _raise_error(await self._one(command)).status

    async def cancelled(self, job_id: UUID, attempt: int, worker_id: str) -> str:
        command = ReportCancelled(job_id=job_id, attempt=attempt, worker_id=worker_id)
        return _raise_error(await self._one(command)).status

    def requested_cancels(self, attempts: Sequence[tuple[UUID, int]]) -> set[UUID]:
        """The jobs whose cached state (this process executed the cancel) says so."""
        return {
            job_id for job_id, attempt in attempts
            if self.ledger.held_cancel_request(job_id, attempt)
        }

    async def poll_cancels(self, worker_id: str, attempts: Sequence[tuple[UUID, int]]) -> set[UUID]:
        """What the cache says (:meth:`requested_cancels`): the cancel was executed here."""
        return self.requested_cancels(attempts)

    async def aclose(self) -> None:
        if self._owns_writer:
            await anyio.to_thread.run_sync(self.writer.close)

    async def _one(self, command: AnyCommand) -> Result:
        (result,) = await self._many([command])
        return result

    async def _many(self, commands: Sequence[AnyCommand]) -> list[Result]:
        if not commands:
            return []
        futures: list[Future[Result]] = [self.writer.submit(c) for c in commands]
        return list(await self._within_timeout(
            asyncio.gather(*map(asyncio.wrap_future, futures))
        ))

    async def _within_timeout(self, call: Awaitable[T]) -> T:
        """``call``'s answer within ``call_timeout``; the ledger's errors as they are but
        the store's, any other (the store failed: the writer hands its error to every
        caller) and a timeout as :class:`LedgerUnavailable`. The store's errors are the
        claims' transaction failing (``adapters/postgres/claims.py`` translates psycopg's
        into :class:`StoreError`): it rolled back, so the caller tries again (a report
        given up there left its job running with no worker until the stale threshold)."""
        try:
            with anyio.fail_after(self.call_timeout):
                return await call
        except TimeoutError:
            raise LedgerUnavailable(
                f"the ledger did not answer within {self.call_timeout:g}s"
            ) from None
        except StoreError as error:
            raise LedgerUnavailable(f"the ledger failed: {error}") from error
        except LedgerError:
            raise
        except Exception as error:
            raise LedgerUnavailable(f"the ledger failed: {error}") from error


def _raise_error(result: Result) -> Outcome:
    if isinstance(result, LedgerError):
        raise result
    return result


def _beat(result: Result) -> Beat:
    if not isinstance(result, LedgerError):
        return Beat.CANCEL_REQUESTED if result.cancel_requested else Beat.RECORDED
    if isinstance(result, AttemptSuperseded | UnknownAttempt | JobNotFound):
        return Beat.SUPERSEDED
    return Beat.UNKNOWN
