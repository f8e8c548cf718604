"""Reports that settle their messages in the ledger's transaction (ADR 155).

A job claimed in one round trip (:mod:`adapters.worker.batch_claims`) is reported through
``port.report_batch``: the reports of the jobs that end together go in one call, and the
ledger deletes the message of each report it answered in the same transaction as the
events, so the worker makes no delete of its own. Each report keeps the shape of the
port's ``complete`` / ``fail`` / ``cancelled``: the job's status, or the same errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from adapters.local_queue.claims import MAX_CLAIMS, ClaimRequest, received_of
from adapters.local_queue.queue import LocalQueue
from adapters.worker.attempt import Attempt
from adapters.worker.coalesce import Coalescer
from adapters.worker.port import LedgerPort, LedgerUnavailable
from ledger.application import Result
from ledger.commands import CompleteJob, FailJob, ReportCancelled
from ledger.errors import LedgerError, ReceiptInvalid
from ledger.ports.transport import Received

ReportCommand = CompleteJob | FailJob | ReportCancelled
Report = tuple[ReportCommand, tuple[int, str] | None]
NextRequest = Callable[[int], ClaimRequest | None]
"""What to claim for ``n`` slots a batch of reports frees (``None``: nothing)."""
"""A report and the ``(seq, token)`` of the message to delete with it."""
ReportCall = Callable[[UUID, int, str, Any], Awaitable[str]]
"""``(job_id, attempt, worker_id, value) -> status``, as the reporter calls the port."""


class SettledReports:
    """Reports of batch-claimed jobs, several per call, deleting their messages."""

    def __init__(
        self, port: LedgerPort, queue_name: str, next_request: NextRequest | None = None
    ) -> None:
        self.port = port
        self.queue_name = queue_name
        self.next_request = next_request
        self._batches: Coalescer[tuple[Report, Attempt], Result] = Coalescer(
            self._send, MAX_CLAIMS
        )

    @classmethod
    def for_worker(
        cls, transport: Any, port: LedgerPort, next_request: NextRequest | None = None
    ) -> SettledReports | None:
        if isinstance(transport, LocalQueue) and getattr(port, "batch_claims", False):
            return cls(port, transport.name, next_request)
        return None

    def complete(self, run: Attempt) -> ReportCall:
        async def call(job_id: UUID, attempt: int, worker_id: str, result: Any) -> str:
            command = CompleteJob(job_id=job_id, attempt=attempt, worker_id=worker_id,
                                  result=result)  # fmt: skip
            return await self._report(command, run)

        return call

    def fail(self, run: Attempt, *, normalised: bool) -> ReportCall:
        async def call(job_id: UUID, attempt: int, worker_id: str, error: str) -> str:
            command = FailJob(job_id=job_id, attempt=attempt, worker_id=worker_id,
                              error=error, error_normalised=normalised)  # fmt: skip
            return await self._report(command, run)

        return call

    def cancelled(self, run: Attempt) -> ReportCall:
        async def call(job_id: UUID, attempt: int, worker_id: str, _value: object) -> str:
            command = ReportCancelled(job_id=job_id, attempt=attempt, worker_id=worker_id)
            return await self._report(command, run)

        return call

    async def _report(self, command: ReportCommand, run: Attempt) -> str:
        try:
            result = await self._batches.submit(((command, _receipt(run.received)), run))
        except LedgerError:
            raise
        except Exception as error:
            raise LedgerUnavailable(f"the report was not sent: {error}") from error
        if isinstance(result, LedgerError):
            raise result
        return result.status

    async def _send(self, items: list[tuple[Report, Attempt]]) -> Sequence[Result]:
        """One call for the batch; with ``report_and_claim``, the jobs claimed for the
        slots it frees go to the reported attempts, one each (ADR 155)."""
        reports = [report for report, _ in items]
        request = self.next_request(len(items)) if self.next_request is not None else None
        both = getattr(self.port, "report_and_claim", None)
        if request is None or both is None:
            answers: Sequence[Result] = await self.port.report_batch(  # type: ignore[attr-defined]
                reports, self.queue_name
            )
            return answers
        answers, claimed = await both(reports, self.queue_name, request)
        for (_, run), job in zip(items, claimed, strict=False):
            run.next_job = (received_of(job), job)
        return answers


def _receipt(received: Received) -> tuple[int, str] | None:
    seq, _, token = received.receipt.partition(":")
    if not seq.isdigit() or not token:
        raise ReceiptInvalid(f"not a local queue receipt: {received.receipt!r}")
    return int(seq), token
