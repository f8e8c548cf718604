"""The worker: receive a message, claim the job, run the handler, report, settle the message.

One anyio task group per worker: a receive loop that keeps ``concurrency`` jobs running,
one task per job, and one heartbeat loop that, every ``heartbeat_interval``, records a
heartbeat of every running attempt in one call and extends their messages' visibility.

A message is a wake-up; the ledger decides. A claim refused because the job is not
pending (a duplicate or obsolete message) deletes the message without calling the
handler; a claim that is early (``JobNotDue``) releases it until the job is due. After
a completion or a failure the message is deleted: a retry is the ledger's ``Requeued``
decision, which the dispatcher sends as a message of its own.

When the ledger answers that the attempt is superseded (the job was found stale and given
to another worker), the worker stops heartbeating it, cancels the handler (async) or
abandons it (a plain one keeps its thread but ``ctx.cancelled`` turns true), reports
nothing and deletes the message.

Draining (:meth:`Worker.drain`, SIGTERM/SIGINT under :func:`run_worker`): no more
receives; messages received but not claimed are released; running jobs have ``grace``
seconds to finish, then their handlers are interrupted and each attempt is reported
failed with ``worker shutting down`` (so the retry policy requeues it at once instead of
waiting for the stale threshold). Heartbeats go on until every job is reported. A report
the ledger never confirms leaves the job to the stale policy, never lost.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import msgspec
from anyio.abc import TaskGroup, TaskStatus

from adapters.worker.config import WorkerConfig
from adapters.worker.context import Cancelled, Handler, JobContext, check_handler, is_async
from adapters.worker.port import Beat, LedgerPort, LedgerUnavailable, WorkerAccessDenied
from ledger.errors import (
    AttemptSuperseded,
    IllegalTransition,
    InvalidCommand,
    JobNotDue,
    JobNotFound,
    LedgerError,
    ReceiptInvalid,
    TransportError,
)
from ledger.ports.transport import MAX_DELAY_SECONDS, MAX_RECEIVE_MESSAGES, Received, Transport

log = logging.getLogger("ledger.worker")

SHUTTING_DOWN = "worker shutting down"
"""The failure reported for an attempt whose handler the drain interrupted."""
MAX_ERROR_CHARS = 2000
"""Error texts are cut to this length (the ledger accepts up to 10,000)."""
TRANSPORT_TIMEOUT = 30.0
"""Seconds for one extend/delete/release call."""


@dataclass
class WorkerStats:
    """What a worker did, for logs, tests and the demo."""

    received: int = 0
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    interrupted: int = 0
    superseded: int = 0
    duplicates: int = 0
    released: int = 0
    heartbeats: int = 0
    abandoned_threads: int = 0
    """Plain handlers still running in their threads when the worker stopped (they were
    superseded or interrupted and ignored ``ctx.cancelled``)."""


@dataclass(eq=False)
class _Running:
    ctx: JobContext
    received: Received
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    reporting: bool = False
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Outcome:
    result: Any = None
    error: BaseException | None = None
    interrupted: bool = False


class Worker:
    """Runs ``handler`` on the jobs ``transport`` delivers, reporting to ``ledger``."""

    def __init__(
        self,
        handler: Handler,
        transport: Transport,
        ledger: LedgerPort,
        config: WorkerConfig | None = None,
    ) -> None:
        self.handler = check_handler(handler)
        self.transport = transport
        self.ledger = ledger
        self.config = config or WorkerConfig()
        self.stats = WorkerStats()
        self.fatal: LedgerError | None = None
        """Set when the worker stopped because it cannot go on (its key was refused)."""
        self._async = is_async(handler)
        self._running: dict[tuple[Any, int], _Running] = {}
        self._draining = False
        self._interrupting = False
        self._receive_scope: anyio.CancelScope | None = None
        self._beat_settled: anyio.Event | None = None
        self._slots: anyio.Semaphore | None = None
        self._threads = anyio.CapacityLimiter(self.config.concurrency)
        self._in_threads = 0
        self._in_threads_lock = threading.Lock()

    @property
    def worker_id(self) -> str:
        return self.config.worker_id

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` (or :meth:`interrupt`) was called."""
        return self._draining

    @property
    def running(self) -> list[JobContext]:
        """The contexts of the jobs running now."""
        return [run.ctx for run in self._running.values()]

    # -- life cycle ---------------------------------------------------------------------

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> WorkerStats:
        """Work until drained (or cancelled); return what was done."""
        self._slots = anyio.Semaphore(self.config.concurrency)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._heartbeat_loop)
            async with anyio.create_task_group() as jobs:
                task_status.started()
                try:
                    await self._receive_loop(jobs)
                finally:
                    self._draining = True
                    outer.start_soon(self._interrupt_after_grace)
            outer.cancel_scope.cancel()
        with self._in_threads_lock:
            self.stats.abandoned_threads = self._in_threads
        return self.stats

    def drain(self) -> None:
        """Stop receiving and let running jobs finish within the grace period; called
        again, interrupt them now."""
        if self._draining:
            self.interrupt()
            return
        self._draining = True
        if self._receive_scope is not None:
            self._receive_scope.cancel()

    def interrupt(self) -> None:
        """Drain, and interrupt every running handler now (no more grace)."""
        self._draining = True
        self._interrupting = True
        if self._receive_scope is not None:
            self._receive_scope.cancel()
        for run in list(self._running.values()):
            if not run.reporting:
                run.interrupted = True
                run.ctx._stopping.set()
                run.scope.cancel()

    async def _interrupt_after_grace(self) -> None:
        if self._running:
            log.info(
                "worker %s draining: %d job(s) running, %gs grace",
                self.worker_id, len(self._running), self.config.grace,
            )
        await anyio.sleep(self.config.grace)
        if self._running:
            log.warning("grace period over: interrupting %d job(s)", len(self._running))
        self.interrupt()

    # -- receiving ------------------------------------------------------------------------

    async def _receive_loop(self, jobs: TaskGroup) -> None:
        pause = 0.0
        while not self._draining:
            with anyio.CancelScope() as scope:
                self._receive_scope = scope
                if pause:
                    await anyio.sleep(pause)
                batch, pause = await self._receive_some()
                for received in batch:
                    jobs.start_soon(self._process, received)
            self._receive_scope = None

    async def _receive_some(self) -> tuple[list[Received], float]:
        """Wait for a free slot, take what else is free, receive that many messages;
        return them (each holding a slot) and how long to pause before the next try."""
        assert self._slots is not None
        await self._slots.acquire()
        taken = 1
        while taken < min(self.config.concurrency, MAX_RECEIVE_MESSAGES):
            try:
                self._slots.acquire_nowait()
            except anyio.WouldBlock:
                break
            taken += 1
        batch: list[Received] = []
        pause = 0.0
        try:
            batch = await self.transport.receive(
                max_messages=taken, wait_seconds=self.config.receive_wait,
                visibility_timeout=self.config.visibility,
            )
        except TransportError as error:
            log.warning("receive failed: %s (retrying)", error)
            pause = 1.0
        finally:
            for _ in range(taken - len(batch)):
                self._slots.release()
        self.stats.received += len(batch)
        return batch, pause

    async def _process(self, received: Received) -> None:
        try:
            await self._handle(received)
        except Exception:
            log.exception("message %s of job %s", received.message_id, received.message.job_id)
        finally:
            assert self._slots is not None
            self._slots.release()

    # -- one job ----------------------------------------------------------------------------

    async def _handle(self, received: Received) -> None:
        message = received.message
        queues = self.config.queues
        if queues is not None and message.queue not in queues:
            await self._release(received, self.config.mismatch_delay)
            return
        if self._draining:
            await self._release(received, 0.0)
            return
        try:
            claimed = await self.ledger.claim(message.job_id, self.worker_id)
        except LedgerError as error:
            await self._claim_refused(received, error)
            return
        self.stats.claimed += 1
        run = _Running(
            JobContext(
                job_id=message.job_id, attempt=claimed.attempt, payload=claimed.payload,
                customer_id=message.customer_id, queue=message.queue, worker_id=self.worker_id,
                receive_count=received.receive_count,
            ),
            received,
        )
        key = (message.job_id, claimed.attempt)
        self._running[key] = run
        if self._interrupting:  # claimed as the grace period ended: report it at once
            run.ctx._stopping.set()
            run.scope.cancel()
        try:
            outcome = await self._call_handler(run)
            with anyio.CancelScope(shield=True):
                await self._settle(run, outcome)
        finally:
            self._running.pop(key, None)

    async def _claim_refused(self, received: Received, error: LedgerError) -> None:
        job_id = received.message.job_id
        if isinstance(error, IllegalTransition):
            log.debug("job %s is %s: message %s dropped", job_id, error.status,
                      received.message_id)
            self.stats.duplicates += 1
            await self._delete(received)
        elif isinstance(error, JobNotDue):
            await self._release(received, _seconds_until(error.not_before))
        elif isinstance(error, JobNotFound):
            log.warning("job %s: no such job; message %s dropped", job_id, received.message_id)
            await self._delete(received)
        elif isinstance(error, WorkerAccessDenied):
            log.error("the ledger refused this worker: %s", error)
            self.fatal = error
            await self._release(received, 0.0)
            self.drain()
        else:
            delay = error.retry_after if isinstance(error, LedgerUnavailable) else None
            log.warning("claim of job %s failed: %s", job_id, error)
            await self._release(received, delay if delay is not None else 1.0)

    async def _call_handler(self, run: _Running) -> _Outcome:
        ctx = run.ctx
        with run.scope:
            try:
                if self._async:
                    result = await self.handler(ctx)
                else:
                    result = await anyio.to_thread.run_sync(
                        self._in_thread, ctx, abandon_on_cancel=True, limiter=self._threads
                    )
            except Cancelled as error:
                if ctx.cancelled:
                    return _Outcome(interrupted=True)
                return _Outcome(error=error)
            except Exception as error:
                return _Outcome(error=error)
            return _Outcome(result=result)
        return _Outcome(interrupted=True)

    def _in_thread(self, ctx: JobContext) -> Any:
        with self._in_threads_lock:
            self._in_threads += 1
        try:
            return self.handler(ctx)
        finally:
            with self._in_threads_lock:
                self._in_threads -= 1

    async def _settle(self, run: _Running, outcome: _Outcome) -> None:
        """Report the attempt's end (unless superseded) and delete the message."""
        ctx = run.ctx
        elapsed = time.monotonic() - run.started
        if ctx.superseded:
            self.stats.superseded += 1
            log.warning("job %s attempt %d superseded after %.1fs: result dropped",
                        ctx.job_id, ctx.attempt, elapsed)
            await self._delete(run.received)
            return
        if outcome.interrupted:
            self.stats.interrupted += 1
            reported = await self._report_failure(run, SHUTTING_DOWN)
        elif outcome.error is not None:
            reported = await self._report_failure(run, _error_text(outcome.error))
        else:
            reported = await self._report_success(run, outcome.result, elapsed)
        if reported:
            await self._delete(run.received)

    async def _report_success(self, run: _Running, result: Any, elapsed: float) -> bool:
        try:
            msgspec.json.encode(result)
        except (TypeError, ValueError, OverflowError) as error:
            return await self._report_failure(run, f"the result is not JSON: {error}")
        ctx = run.ctx
        try:
            status = await self._report(run, self.ledger.complete, result)
        except InvalidCommand as error:
            return await self._report_failure(run, f"the result was refused: {error}")
        if status is None:
            return False
        if status != "superseded":
            self.stats.completed += 1
            log.info("job %s attempt %d completed in %.2fs", ctx.job_id, ctx.attempt, elapsed)
        return True

    async def _report_failure(self, run: _Running, error: str) -> bool:
        ctx = run.ctx
        status = await self._report(run, self.ledger.fail, error[:MAX_ERROR_CHARS])
        if status is None:
            return False
        if status != "superseded":
            self.stats.failed += 1
            log.info("job %s attempt %d failed (%s): %s", ctx.job_id, ctx.attempt, status,
                     error.splitlines()[0][:200] if error else "")
        return True

    async def _report(self, run: _Running, call: Any, value: Any) -> str | None:
        """Make ``call`` (complete or fail) until the ledger answers or ``report_timeout``
        passes; the job's status, ``"superseded"``, or ``None`` if it never answered."""
        ctx = run.ctx
        deadline = anyio.current_time() + self.config.report_timeout
        pause = 0.2
        while True:
            run.reporting = True
            if self._beat_settled is not None:  # a heartbeat in flight must not land after
                await self._beat_settled.wait()
            try:
                status: str = await call(ctx.job_id, ctx.attempt, self.worker_id, value)
            except AttemptSuperseded as error:
                ctx._superseded.set()
                self.stats.superseded += 1
                log.warning("job %s attempt %d: report refused: %s", ctx.job_id, ctx.attempt,
                            error)
                return "superseded"
            except LedgerUnavailable as error:
                run.reporting = False
                left = deadline - anyio.current_time()
                if left <= 0:
                    log.error("job %s attempt %d: the ledger never confirmed the report (%s); "
                              "the stale policy will recover it", ctx.job_id, ctx.attempt, error)
                    return None
                await anyio.sleep(min(left, error.retry_after or pause))
                pause = min(pause * 2, 5.0)
                continue
            return status

    # -- heartbeats ----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.config.heartbeat_interval
        next_beat = anyio.current_time() + interval
        while True:
            await anyio.sleep(max(0.0, next_beat - anyio.current_time()))
            next_beat = max(next_beat + interval, anyio.current_time())
            runs = [
                r for r in self._running.values() if not r.reporting and not r.ctx.superseded
            ]
            if runs:
                try:
                    await self._beat(runs)
                except Exception:
                    log.exception("heartbeat of %d job(s) failed", len(runs))

    async def _beat(self, runs: list[_Running]) -> None:
        settled = self._beat_settled = anyio.Event()
        try:
            answers = await self.ledger.heartbeats(
                self.worker_id, [(r.ctx.job_id, r.ctx.attempt) for r in runs]
            )
        finally:
            self._beat_settled = None
            settled.set()
        live = []
        for run in runs:
            answer = answers.get(run.ctx.job_id, Beat.UNKNOWN)
            if answer is Beat.SUPERSEDED:
                self._supersede(run)
            else:
                self.stats.heartbeats += answer is Beat.RECORDED
                live.append(run)
        async with anyio.create_task_group() as tg:
            for run in live:
                tg.start_soon(self._extend, run)

    def _supersede(self, run: _Running) -> None:
        log.warning("job %s attempt %d is superseded: abandoning its handler",
                    run.ctx.job_id, run.ctx.attempt)
        run.ctx._superseded.set()
        run.scope.cancel()

    # -- the message -------------------------------------------------------------------------

    async def _extend(self, run: _Running) -> None:
        await self._transport_call(
            "extend", run.received, self.transport.extend, run.received, self.config.visibility
        )

    async def _delete(self, received: Received) -> None:
        await self._transport_call("delete", received, self.transport.delete, received)

    async def _release(self, received: Received, delay: float) -> None:
        delay = min(max(0.0, delay), MAX_DELAY_SECONDS)
        if await self._transport_call(
            "release", received, self.transport.release, received, delay=delay
        ):
            self.stats.released += 1

    async def _transport_call(
        self, what: str, received: Received, call: Any, *args: Any, **kwargs: Any
    ) -> bool:
        try:
            with anyio.fail_after(TRANSPORT_TIMEOUT):
                await call(*args, **kwargs)
        except ReceiptInvalid:
            log.debug("%s of message %s: receipt no longer valid", what, received.message_id)
            return False
        except (TransportError, TimeoutError) as error:
            log.warning("%s of message %s failed: %s", what, received.message_id, error)
            return False
        return True


def _seconds_until(iso: str) -> float:
    try:
        due = datetime.fromisoformat(iso)
    except ValueError:
        return 1.0
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    seconds = (due - datetime.now(UTC)).total_seconds()
    return 0.0 if not math.isfinite(seconds) else max(0.0, seconds)


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    name = type(error).__name__
    return f"{name}: {text}" if text else name
