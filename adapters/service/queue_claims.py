"""Claims in one round trip and reports that delete their messages (ADR 155), run on the
batch writer's thread of this process. A claim whose caller stops waiting once its
transaction has begun hands its jobs back when it commits (ADR 207).

:func:`queue_claims_for` answers ``None`` when the ledger's database cannot hold the
claim's transaction with the local queue's rows (SQLite, or a ledger without the
PostgreSQL recorder): callers then fall back to receive-then-claim.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from adapters.local_queue.claims import MAX_CLAIMS, ClaimedMessage, ClaimRequest, ReportBatch
from adapters.service.batching import BatchWriter
from adapters.tracing import observe
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, FailJob
from ledger.errors import InvalidCommand

if TYPE_CHECKING:
    from adapters.postgres.claims import PostgresClaims

log = logging.getLogger(__name__)

HANDED_BACK = (
    "handed back: the worker stopped waiting for its claim (its call timed out or was "
    "cancelled) after the claim's transaction had begun"
)
"""The error of an attempt a claim opened for a caller that was gone (ADR 207)."""


class QueueClaims:
    """Claims and settling reports of one ledger, through its batch writer: the requests
    that wait while the writer is busy go in one transaction together (group commit)."""

    def __init__(
        self, claims: PostgresClaims, writer: BatchWriter, clock: Callable[[], datetime],
        epoch: Callable[[], float] = time.time,
    ) -> None:
        self.claims = claims
        self.writer = writer
        self.clock = clock
        self.epoch = epoch
        self._pending: list[tuple[ReportBatch | ClaimRequest, Future[Any]]] = []
        self._lock = threading.Lock()

    async def claim(self, request: ClaimRequest) -> list[ClaimedMessage]:
        """Up to ``request.limit`` jobs claimed (1 to :data:`MAX_CLAIMS`)."""
        if not 1 <= request.limit <= MAX_CLAIMS:
            raise InvalidCommand(f"max must be 1 to {MAX_CLAIMS}, got {request.limit}")
        (future,) = self._enqueue([request])
        claimed: list[ClaimedMessage] = await self._claimed(future, request)
        return claimed

    async def report(
        self, commands: Sequence[AnyCommand], receipts: Sequence[tuple[int, str] | None],
        queue_name: str,
    ) -> list[Result]:
        """The reports' results; the messages of the answered ones are deleted with them."""
        results: list[Result] = await self._submit(
            ReportBatch(list(commands), list(receipts), queue_name)
        )
        return results

    async def report_and_claim(
        self, commands: Sequence[AnyCommand], receipts: Sequence[tuple[int, str] | None],
        queue_name: str, claim: ClaimRequest,
    ) -> tuple[list[Result], list[ClaimedMessage]]:
        """The reports and a claim for the slots they free, in the same transaction."""
        if not 1 <= claim.limit <= MAX_CLAIMS:
            raise InvalidCommand(f"max must be 1 to {MAX_CLAIMS}, got {claim.limit}")
        futures = self._enqueue([ReportBatch(list(commands), list(receipts), queue_name), claim])
        try:
            results: list[Result] = await asyncio.wrap_future(futures[0])
        except BaseException:
            self._hand_back_if_claimed(futures[1], claim)
            raise
        claimed: list[ClaimedMessage] = await self._claimed(futures[1], claim)
        return results, claimed

    async def _claimed(self, future: Future[Any], request: ClaimRequest) -> Any:
        """The claim's answer; if its caller stops waiting (the worker's call timeout,
        a cancelled task) once the claim's transaction has begun, the jobs it claims are
        handed back as soon as it commits (ADR 207)."""
        try:
            return await asyncio.wrap_future(future)
        except BaseException:
            self._hand_back_if_claimed(future, request)
            raise

    def _hand_back_if_claimed(self, future: Future[Any], request: ClaimRequest) -> None:
        future.add_done_callback(lambda done: self._hand_back(done, request))

    def _hand_back(self, future: Future[Any], request: ClaimRequest) -> None:
        """Fail the attempts a claim opened for a caller that is gone, deleting their
        messages with the reports, so the retry policy decides at once what the stale
        policy would have decided after its threshold (ADR 207)."""
        if future.cancelled() or future.exception() is not None:
            return  # left out of the drain, or not committed: nothing was claimed
        claimed: list[ClaimedMessage] = future.result()
        if not claimed:
            return
        commands = [FailJob(job_id=UUID(c.job_id), attempt=c.attempt,
                            worker_id=request.worker_id, error=HANDED_BACK)
                    for c in claimed]  # fmt: skip
        receipts: list[tuple[int, str] | None] = [
            (c.seq, c.receipt.partition(":")[2]) for c in claimed
        ]
        (report,) = self._enqueue([ReportBatch(commands, receipts, request.queue_name)])
        report.add_done_callback(lambda done: _log_hand_back(done, claimed))

    async def _submit(self, item: ReportBatch | ClaimRequest) -> Any:
        (future,) = self._enqueue([item])
        return await asyncio.wrap_future(future)

    def _enqueue(self, items: list[ReportBatch | ClaimRequest]) -> list[Future[Any]]:
        """Queue ``items`` together: one drain takes them all."""
        futures: list[Future[Any]] = [Future() for _ in items]
        with self._lock:
            self._pending.extend(zip(items, futures, strict=True))
        self.writer.call(self._drain)
        return futures

    def _drain(self) -> None:
        """On the writer's thread: every request waiting, in one transaction."""
        with self._lock:
            items, self._pending = self._pending, []
        # A caller that gave up meanwhile (the worker's call timeout cancels its future) is
        # left out: its claim would take jobs nobody runs, its report is sent again. The
        # others' futures can no longer be cancelled, so each gets its answer (a cancelled
        # one's set_result raised and left every later caller of the drain unanswered).
        items = [(i, f) for i, f in items if f.set_running_or_notify_cancel()]
        if not items:
            return  # an earlier drain took them, or their callers gave up
        reports = [(i, f) for i, f in items if isinstance(i, ReportBatch)]
        claims = [(i, f) for i, f in items if isinstance(i, ClaimRequest)]
        try:
            reported, claimed = self.claims.run(
                [i for i, _ in reports], [i for i, _ in claims], self.clock(), self.epoch()
            )
        except Exception as error:  # every caller of the transaction hears of it
            for _, future in items:
                future.set_exception(error)
            return
        for (_, future), answer in zip([*reports, *claims], [*reported, *claimed], strict=True):
            future.set_result(answer)
        # the reports' decisions (failed, requeued, dead_lettered...) logged and traced as
        # the batch writer's are, after the answers; a claim's span is the worker's attempt
        observe([c for i, _ in reports for c in i.commands], [r for rs in reported for r in rs])


def _log_hand_back(future: Future[Any], claimed: list[ClaimedMessage]) -> None:
    jobs = ", ".join(c.job_id for c in claimed)
    if future.cancelled() or (error := future.exception()) is not None:
        log.warning("handing back claimed jobs %s failed (the stale policy will): %s",
                    jobs, "cancelled" if future.cancelled() else error)  # fmt: skip
        return
    log.info("claimed jobs %s handed back: their worker stopped waiting for the claim", jobs)


def queue_claims_for(
    ledger: JobLedger, writer: BatchWriter, clock: Callable[[], datetime]
) -> QueueClaims | None:
    """The claims of ``ledger`` if its log is on PostgreSQL (where the local queue's rows
    are), else ``None``."""
    from adapters.postgres.claims import PostgresClaims
    from adapters.postgres.event_recorder import LedgerEventRecorder

    recorder = ledger.recorder
    if not isinstance(recorder, LedgerEventRecorder):
        return None
    return QueueClaims(PostgresClaims(ledger, recorder), writer, clock)
