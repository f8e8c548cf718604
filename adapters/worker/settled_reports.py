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

from adapters.local_queue.claims import MAX_CLAIMS
from adapters.local_queue.queue import LocalQueue
from adapters.worker.coalesce import Coalescer
from adapters.worker.port import LedgerPort, LedgerUnavailable
from ledger.application import Result
from ledger.commands import CompleteJob, FailJob, ReportCancelled
from ledger.errors import LedgerError, ReceiptInvalid
from ledger.ports.transport import Received

ReportCommand = CompleteJob | FailJob | ReportCancelled
Report = tuple[ReportCommand, tuple[int, str] | None]
"""A report and the ``(seq, token)`` of the message to delete with it."""
ReportCall = Callable[[UUID, int, str, Any], Awaitable[str]]
"""``(job_id, attempt, worker_id, value) -> status``, as the reporter calls the port."""


class SettledReports:
    """Reports of batch-claimed jobs, several per call, deleting their messages."""

    def __init__(self, port: LedgerPort, queue_name: str) -> None:
        self.port = port
        self.queue_name = queue_name
        self._batches: Coalescer[Report, Result] = Coalescer(self._send, MAX_CLAIMS)

    @classmethod
    def for_worker(cls, transport: Any, port: LedgerPort) -> SettledReports | None:
        if isinstance(transport, LocalQueue) and hasattr(port, "report_batch"):
            return cls(port, transport.name)
        return None

    def complete(self, received: Received) -> ReportCall:
        async def call(job_id: UUID, attempt: int, worker_id: str, result: Any) -> str:
            command = CompleteJob(job_id=job_id, attempt=attempt, worker_id=worker_id,
                                  result=result)  # fmt: skip
            return await self._report(command, received)

        return call

    def fail(self, received: Received, *, normalised: bool) -> ReportCall:
        async def call(job_id: UUID, attempt: int, worker_id: str, error: str) -> str:
            command = FailJob(job_id=job_id, attempt=attempt, worker_id=worker_id,
                              error=error, error_normalised=normalised)  # fmt: skip
            return await self._report(command, received)

        return call

    def cancelled(self, received: Received) -> ReportCall:
        async def call(job_id: UUID, attempt: int, worker_id: str, _value: object) -> str:
            command = ReportCancelled(job_id=job_id, attempt=attempt, worker_id=worker_id)
            return await self._report(command, received)

        return call

    async def _report(self, command: ReportCommand, received: Received) -> str:
        try:
            result = await self._batches.submit((command, _receipt(received)))
        except LedgerError:
            raise
        except Exception as error:
            raise LedgerUnavailable(f"the report was not sent: {error}") from error
        if isinstance(result, LedgerError):
            raise result
        return result.status

    async def _send(self, reports: list[Report]) -> Sequence[Result]:
        send = self.port.report_batch  # type: ignore[attr-defined]
        answers: Sequence[Result] = await send(reports, self.queue_name)
        return answers


def _receipt(received: Received) -> tuple[int, str] | None:
    seq, _, token = received.receipt.partition(":")
    if not seq.isdigit() or not token:
        raise ReceiptInvalid(f"not a local queue receipt: {received.receipt!r}")
    return int(seq), token
