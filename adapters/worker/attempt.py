"""One claimed attempt while it runs, and the call of the handler on it.

An async handler runs in the attempt's cancel scope; a plain one in a thread (at most
``concurrency`` at once), abandoned on cancel: it keeps its thread, but ``ctx.cancelled``
turns true. The call never raises: it answers an :class:`Outcome` (the result, the error,
that an operator's cancel stopped it, or that the attempt was interrupted).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from adapters.local_queue.claims import ClaimedMessage
from adapters.tracing import NO_TRACE, AttemptTrace
from adapters.worker.context import Cancelled, Handler, JobContext
from ledger.ports.transport import Received


@dataclass(eq=False)
class Attempt:
    """A claimed attempt: its context, the message that woke it, its cancel scope."""

    ctx: JobContext
    received: Received
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    reporting: bool = False
    """True while its end is being reported: heartbeats and interruptions leave it alone."""
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    traceparent: str | None = None
    """The producer's trace context (ADR 125), for the attempt's log lines."""
    trace: AttemptTrace = NO_TRACE
    """The attempt's span (claim to report): the handler runs inside it."""
    claimed_in_batch: bool = False
    """Claimed in one round trip (ADR 155): its report deletes its message (ledger side)."""
    next_job: tuple[Received, ClaimedMessage] | None = None
    """The job its report claimed next, to run in its slot (ADR 155)."""

    def stop(self) -> None:
        """Tell the handler to stop (``ctx.cancelled``) and cancel its scope."""
        self.ctx._stopping.set()
        self.scope.cancel()

    def interrupt(self) -> None:
        """Stop the handler for a drain, unless its end is already being reported."""
        if not self.reporting:
            self.interrupted = True
            self.stop()

    def cancel(self) -> None:
        """An operator cancelled the job: stop the handler; its end is reported cancelled."""
        if not self.reporting and not self.ctx.cancel_requested:
            self.ctx._cancel_requested.set()
            self.scope.cancel()

    def supersede(self) -> None:
        """The ledger gave the job to another worker: abandon the handler."""
        self.ctx._superseded.set()
        self.scope.cancel()


@dataclass(frozen=True)
class Outcome:
    """How a handler call ended: its result, its error, or interrupted."""

    result: Any = None
    error: BaseException | None = None
    interrupted: bool = False
    cancelled: bool = False
    """The handler stopped because an operator cancelled the job."""


class HandlerCaller:
    """Calls ``handler`` on attempts; counts the plain handlers running in threads."""

    def __init__(self, handler: Handler, run_async: bool, concurrency: int) -> None:
        self.handler = handler
        self._async = run_async
        self._threads = anyio.CapacityLimiter(concurrency)
        self._in_threads = 0
        self._in_threads_lock = threading.Lock()

    @property
    def in_threads(self) -> int:
        """Plain handlers running in their threads now (abandoned ones included)."""
        with self._in_threads_lock:
            return self._in_threads

    async def call(self, run: Attempt) -> Outcome:
        """Run the handler on ``run`` within its scope; what came of it."""
        ctx = run.ctx
        with run.scope, run.trace.active():
            try:
                if self._async:
                    result = await self.handler(ctx)
                else:
                    result = await anyio.to_thread.run_sync(
                        self._in_thread, ctx, abandon_on_cancel=True, limiter=self._threads
                    )
            except Cancelled as error:
                if ctx.cancelled:
                    return _stopped(ctx)
                run.trace.failed(error)
                return Outcome(error=error)
            except Exception as error:
                run.trace.failed(error)
                return Outcome(error=error)
            return Outcome(result=result)
        return _stopped(ctx)

    def _in_thread(self, ctx: JobContext) -> Any:
        with self._in_threads_lock:
            self._in_threads += 1
        try:
            return self.handler(ctx)
        finally:
            with self._in_threads_lock:
                self._in_threads -= 1


def _stopped(ctx: JobContext) -> Outcome:
    """A handler that stopped when told to: cancelled by an operator, else interrupted."""
    if ctx.cancel_requested:
        return Outcome(cancelled=True)
    return Outcome(interrupted=True)
