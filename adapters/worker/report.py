"""The end of an attempt: report it to the ledger, then delete its message.

A superseded attempt reports nothing. One an operator cancelled is reported cancelled
(``ReportCancelled``: the job ends ``cancelled``). An interrupted one is reported failed
with :data:`SHUTTING_DOWN`, so the retry policy requeues it at once. A report is retried
while the ledger does not answer (or answers ``concurrency_exhausted``: other writers won
every try), for ``report_timeout`` seconds; one it never confirms
keeps the message and leaves the job to the stale policy, never lost.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

import anyio
import msgspec

from adapters.tracing import decision_extra
from adapters.worker.attempt import Attempt, Outcome
from adapters.worker.config import WorkerConfig
from adapters.worker.heartbeats import Heartbeats
from adapters.worker.messages import Messages
from adapters.worker.port import LedgerPort, LedgerUnavailable
from adapters.worker.settled_reports import SettledReports
from adapters.worker.stats import WorkerStats
from ledger.errors import AttemptSuperseded, ConcurrencyExhausted, InvalidCommand
from ledger.text import MAX_ERROR_CHARS, normalise

log = logging.getLogger("ledger.worker")

SHUTTING_DOWN = "worker shutting down"
"""The failure reported for an attempt whose handler the drain interrupted."""


class Reporter:
    """Reports attempts' ends to ``ledger`` and settles their messages."""

    def __init__(
        self,
        ledger: LedgerPort,
        config: WorkerConfig,
        heartbeats: Heartbeats,
        messages: Messages,
        stats: WorkerStats,
        *,
        settled: SettledReports | None = None,
    ) -> None:
        self.settled = settled
        """Reports of batch-claimed jobs, which delete their messages (ADR 155)."""
        self.ledger = ledger
        self.config = config
        self.heartbeats = heartbeats
        self.messages = messages
        self.stats = stats

    async def settle(self, run: Attempt, outcome: Outcome) -> None:
        """Report the attempt's end (unless superseded) and delete the message."""
        ctx = run.ctx
        elapsed = time.monotonic() - run.started
        if ctx.superseded:
            self.stats.superseded += 1
            log.warning("job %s attempt %d superseded after %.1fs: result dropped",
                        ctx.job_id, ctx.attempt, elapsed)
            await self.messages.delete(run.received)
            return
        if outcome.cancelled:
            reported = await self._cancelled(run, elapsed)
        elif outcome.interrupted:
            self.stats.interrupted += 1
            reported = await self._failure(run, SHUTTING_DOWN)
        elif outcome.error is not None:
            reported = await self._failure(run, _error_text(outcome.error))
        else:
            reported = await self._success(run, outcome.result, elapsed)
        if reported and not self._settles(run):
            await self.messages.delete(run.received)

    def _settles(self, run: Attempt) -> bool:
        """True when the report itself deletes the message (ADR 155)."""
        return run.claimed_in_batch and self.settled is not None

    async def _success(self, run: Attempt, result: Any, elapsed: float) -> bool:
        try:
            msgspec.json.encode(result)
        except (TypeError, ValueError, OverflowError) as error:
            return await self._failure(run, f"the result is not JSON: {error}")
        ctx = run.ctx
        try:
            complete: Any = self.ledger.complete
            if self.settled is not None and self._settles(run):
                complete = self.settled.complete(run)
            status = await self._report(run, complete, result)
        except InvalidCommand as error:
            return await self._failure(run, f"the result was refused: {error}")
        if status is None:
            return False
        if status != "superseded":
            self.stats.completed += 1
            log.info("job %s attempt %d completed in %.2fs", ctx.job_id, ctx.attempt, elapsed,
                     extra=_extra("completed", run, status, elapsed=round(elapsed, 3)))
        return True

    async def _cancelled(self, run: Attempt, elapsed: float) -> bool:
        ctx = run.ctx
        call = _report_cancelled(self.ledger)
        if self.settled is not None and self._settles(run):
            call = self.settled.cancelled(run)
        status = await self._report(run, call, None)
        if status is None:
            return False
        if status != "superseded":
            self.stats.cancelled += 1
            log.info("job %s attempt %d cancelled after %.2fs", ctx.job_id, ctx.attempt,
                     elapsed, extra=_extra("cancelled", run, status, elapsed=round(elapsed, 3)))
        return True

    async def _failure(self, run: Attempt, error: str) -> bool:
        ctx = run.ctx
        # A handler's error is whatever it says: made storable (and cut to
        # MAX_ERROR_CHARS) rather than refused, and marked so, so the failure is recorded.
        text, normalised = normalise(error, MAX_ERROR_CHARS)
        fail: Any = partial(self.ledger.fail, normalised=normalised)
        if self.settled is not None and self._settles(run):
            fail = self.settled.fail(run, normalised=normalised)
        status = await self._report(run, fail, text)
        if status is None:
            return False
        if status != "superseded":
            self.stats.failed += 1
            first = text.splitlines()[0][:200] if text else ""
            log.info("job %s attempt %d failed (%s): %s", ctx.job_id, ctx.attempt, status,
                     first, extra=_extra("failed", run, status, error=first))
        return True

    async def _report(self, run: Attempt, call: Any, value: Any) -> str | None:
        """Make ``call`` (complete or fail) until the ledger answers or ``report_timeout``
        passes; the job's status, ``"superseded"``, or ``None`` if it never answered."""
        ctx = run.ctx
        deadline = anyio.current_time() + self.config.report_timeout
        pause = 0.2
        while True:
            run.reporting = True
            await self.heartbeats.settled()  # a heartbeat in flight must not land after
            try:
                status: str = await call(ctx.job_id, ctx.attempt, self.config.worker_id, value)
            except AttemptSuperseded as error:
                run.trace.reported("superseded")
                ctx._superseded.set()
                self.stats.superseded += 1
                log.warning("job %s attempt %d: report refused: %s", ctx.job_id, ctx.attempt,
                            error)
                return "superseded"
            except (LedgerUnavailable, ConcurrencyExhausted) as error:
                # ConcurrencyExhausted: the job (or its capped queue) kept changing under
                # the report, other writers won every try; it was not applied, so it is
                # sent again, as when the ledger did not answer
                run.reporting = False
                left = deadline - anyio.current_time()
                if left <= 0:
                    log.error("job %s attempt %d: the ledger never confirmed the report (%s); "
                              "the stale policy will recover it", ctx.job_id, ctx.attempt, error)
                    return None
                retry_after = getattr(error, "retry_after", None)
                await anyio.sleep(min(left, retry_after or pause))
                pause = min(pause * 2, 5.0)
                continue
            run.trace.reported(status)
            return status


def _report_cancelled(ledger: LedgerPort) -> Any:
    """``ledger.cancelled`` shaped as the other reports (``value`` unused)."""

    async def call(job_id: Any, attempt: int, worker_id: str, _value: object) -> str:
        return await ledger.cancelled(job_id, attempt, worker_id)

    return call


def _extra(event: str, run: Attempt, status: str, **fields: Any) -> dict[str, Any]:
    """A report's line as a decision (``LOG_FORMAT=json``: one object, ADR 125)."""
    return decision_extra(event, run.ctx.job_id, run.ctx.attempt, run.traceparent,
                          status=status, worker_id=run.ctx.worker_id, **fields)


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    name = type(error).__name__
    return f"{name}: {text}" if text else name
