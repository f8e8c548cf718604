"""The worker: receive a message, claim the job, run the handler, report, settle the message.

One anyio task group per worker: a receive loop that keeps ``concurrency`` jobs running,
one task per job, and the heartbeat loop (:mod:`adapters.worker.heartbeats`) that, every
``heartbeat_interval``, records a heartbeat of every running attempt in one call and
extends their messages' visibility.

A message is a wake-up; the ledger decides. A claim refused because the job is not
pending (a duplicate or obsolete message) deletes the message without calling the
handler; a claim that is early (``JobNotDue``) releases it until the job is due; one
refused by the job's queue (paused or at its cap) releases it and leaves that queue alone
for a moment (:mod:`adapters.worker.queue_waits`). Every
message released before a handler ran is handed back uncounted
(:meth:`~adapters.worker.messages.Messages.hand_back`), so receives no handler attempted
never dead-letter a job. After a completion or a failure the message is deleted
(:mod:`adapters.worker.report`): a retry is the ledger's ``Requeued`` decision, which the
dispatcher sends as a message of its own.

When the ledger answers that the attempt is superseded (the job was found stale and given
to another worker), the worker stops heartbeating it, cancels the handler (async) or
abandons it (a plain one keeps its thread but ``ctx.cancelled`` turns true), reports
nothing and deletes the message.

Draining (:meth:`Worker.drain`, SIGTERM/SIGINT under :func:`run_worker`): no more
receives; messages received but not claimed are handed back; running jobs have ``grace``
seconds to finish, then their handlers are interrupted and each attempt is reported
failed with ``worker shutting down`` (so the retry policy requeues it at once instead of
waiting for the stale threshold). Heartbeats go on until every job is reported. A report
the ledger never confirms leaves the job to the stale policy, never lost.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from adapters.local_queue.claims import MAX_CLAIMS, ClaimedMessage, ClaimRequest
from adapters.tracing import start_attempt
from adapters.worker.attempt import Attempt, HandlerCaller
from adapters.worker.batch_claims import BatchClaimer
from adapters.worker.config import WorkerConfig
from adapters.worker.context import Handler, JobContext, check_handler, is_async
from adapters.worker.heartbeats import Heartbeats
from adapters.worker.messages import Messages
from adapters.worker.port import LedgerPort, LedgerUnavailable, WorkerAccessDenied
from adapters.worker.queue_waits import QueueWaits, wait_for
from adapters.worker.report import Reporter
from adapters.worker.settled_reports import SettledReports
from adapters.worker.stats import WorkerStats
from ledger.errors import IllegalTransition, JobNotDue, JobNotFound, LedgerError, TransportError
from ledger.ports.transport import MAX_RECEIVE_MESSAGES, Received, Transport

log = logging.getLogger("ledger.worker")


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
        self._running: dict[tuple[Any, int], Attempt] = {}
        self._draining = False
        self._interrupting = False
        self._receive_scope: anyio.CancelScope | None = None
        self._slots: anyio.Semaphore | None = None
        self._caller = HandlerCaller(self.handler, is_async(handler), self.config.concurrency)
        self._messages = Messages(transport, self.config, self.stats)
        self._queue_waits = QueueWaits()
        self._heartbeats = Heartbeats(
            ledger, self.config, self._running, self._messages, self.stats
        )
        self._reporter = Reporter(
            ledger, self.config, self._heartbeats, self._messages, self.stats,
            settled=SettledReports.for_worker(transport, ledger, self._next_request)
            if self.config.batch_claims else None,
        )
        self._claimer = (BatchClaimer.for_worker(transport, ledger, self.config)
                         if self.config.batch_claims else None)  # fmt: skip

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
            outer.start_soon(self._heartbeats.loop)
            outer.start_soon(self._heartbeats.watch_cancels)
            async with anyio.create_task_group() as jobs:
                task_status.started()
                try:
                    await self._receive_loop(jobs)
                finally:
                    self._draining = True
                    outer.start_soon(self._interrupt_after_grace)
            outer.cancel_scope.cancel()
        self.stats.abandoned_threads = self._caller.in_threads
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
            run.interrupt()

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
                if pause and self._claimer is not None and self._claimer.enabled:
                    await self._claimer.pause(pause)  # woken by a send (ADR 210)
                elif pause:
                    await anyio.sleep(pause)
                await anyio.sleep(self._queue_waits.all_waiting(self.config.queues))
                if self._claimer is not None and self._claimer.enabled:
                    claimed, pause = await self._claim_some()
                    for received, job in claimed:
                        jobs.start_soon(self._process, received, job)
                    continue
                batch, pause = await self._receive_some()
                for received in batch:
                    jobs.start_soon(self._process, received)
            self._receive_scope = None

    def _next_request(self, limit: int) -> ClaimRequest | None:
        """What a batch of reports asks for next, for the slots it frees (none while
        draining or once batch claims are off)."""
        claimer = self._claimer
        if self._draining or claimer is None or not claimer.enabled:
            return None
        return claimer.request(limit)

    async def _take_slots(self, most: int) -> int:
        """Wait for a free slot, take what else is free (up to ``most``); how many."""
        assert self._slots is not None
        await self._slots.acquire()
        taken = 1
        while taken < min(self.config.concurrency, most):
            try:
                self._slots.acquire_nowait()
            except anyio.WouldBlock:
                break
            taken += 1
        return taken

    async def _claim_some(self) -> tuple[list[tuple[Received, ClaimedMessage]], float]:
        """Claim as many jobs as slots are free in one call (ADR 155); each holds a slot."""
        assert self._slots is not None
        assert self._claimer is not None
        taken = await self._take_slots(MAX_CLAIMS)
        claimed: list[tuple[Received, ClaimedMessage]] = []
        try:
            claimed, pause = await self._claimer.claim(taken, self._draining)
            if self._claimer.fatal is not None:
                self.fatal = self._claimer.fatal
                self.drain()
        finally:
            for _ in range(taken - len(claimed)):
                self._slots.release()
        self.stats.received += len(claimed)
        return claimed, pause

    async def _receive_some(self) -> tuple[list[Received], float]:
        """Wait for a free slot, take what else is free, receive that many messages;
        return them (each holding a slot) and how long to pause before the next try."""
        assert self._slots is not None
        taken = await self._take_slots(MAX_RECEIVE_MESSAGES)
        batch: list[Received] = []
        pause = 0.0
        try:
            batch = await self.transport.receive(
                max_messages=taken, wait_seconds=self.config.receive_wait,
                visibility_timeout=self.config.visibility, queues=self.config.queues,
            )
        except TransportError as error:
            log.warning("receive failed: %s (retrying)", error)
            pause = 1.0
        finally:
            for _ in range(taken - len(batch)):
                self._slots.release()
        self.stats.received += len(batch)
        return batch, pause

    async def _process(self, received: Received, claimed: ClaimedMessage | None = None) -> None:
        """Run one job; then, in the same slot, the job its report claimed next (ADR 155)."""
        try:
            job: tuple[Received, ClaimedMessage | None] | None = (received, claimed)
            while job is not None:
                received, claimed = job
                job = await self._handle(received, claimed)
                self.stats.received += job is not None
        except Exception:
            log.exception("message %s of job %s", received.message_id, received.message.job_id)
        finally:
            assert self._slots is not None
            self._slots.release()

    # -- one job ----------------------------------------------------------------------------

    async def _handle(
        self, received: Received, claimed: ClaimedMessage | None
    ) -> tuple[Received, ClaimedMessage | None] | None:
        run: Attempt | None
        if claimed is not None:
            self.stats.claimed += 1
            run = _attempt(received, claimed.attempt, claimed.payload, claimed.traceparent,
                           self.worker_id)
            run.claimed_in_batch = True
        else:
            run = await self._claim(received)
        if run is None:
            return None
        key = (run.ctx.job_id, run.ctx.attempt)
        self._running[key] = run
        if self._interrupting:  # claimed as the grace period ended: report it at once
            run.stop()
        try:
            outcome = await self._caller.call(run)
            with anyio.CancelScope(shield=True):
                await self._reporter.settle(run, outcome)
        except Exception:
            # the report failed in a way the reporter does not handle (the stale policy
            # recovers the job); the job its report claimed next is claimed all the same,
            # and nobody else runs it: it still runs in this slot (ADR 155)
            log.exception("job %s attempt %d: the report failed", run.ctx.job_id,
                          run.ctx.attempt)
        finally:
            self._running.pop(key, None)
            run.trace.end()
        return run.next_job

    async def _claim(self, received: Received) -> Attempt | None:
        """Claim the message's job; the attempt, or ``None`` once the message is settled."""
        message = received.message
        queues = self.config.queues
        if queues is not None and message.queue not in queues:
            await self._messages.hand_back(received, self.config.mismatch_delay)
            return None
        if self._draining:
            await self._messages.hand_back(received, 0.0)
            return None
        waiting = self._queue_waits.remaining(message.queue)
        if waiting:  # its queue refused a claim a moment ago: do not ask again yet
            await self._messages.hand_back(received, waiting)
            return None
        try:
            claimed = await self.ledger.claim(message.job_id, self.worker_id)
        except LedgerError as error:
            await self._claim_refused(received, error)
            return None
        self.stats.claimed += 1
        return _attempt(received, claimed.attempt, claimed.payload, claimed.traceparent,
                        self.worker_id)

    async def _claim_refused(self, received: Received, error: LedgerError) -> None:
        job_id = received.message.job_id
        if isinstance(error, IllegalTransition):
            log.debug("job %s is %s: message %s dropped", job_id, error.status,
                      received.message_id)
            self.stats.duplicates += 1
            await self._messages.delete(received)
        elif isinstance(error, JobNotDue):
            await self._messages.hand_back(received, _seconds_until(error.not_before))
        elif (wait := wait_for(error)) is not None:
            seconds = self._queue_waits.wait(received.message.queue, wait)
            log.debug("job %s: %s; message handed back for %.2fs", job_id, error, seconds)
            await self._messages.hand_back(received, seconds)
        elif isinstance(error, JobNotFound):
            log.warning("job %s: no such job; message %s dropped", job_id, received.message_id)
            await self._messages.delete(received)
        elif isinstance(error, WorkerAccessDenied):
            log.error("the ledger refused this worker: %s", error)
            self.fatal = error
            await self._messages.hand_back(received, 0.0)
            self.drain()
        else:
            delay = error.retry_after if isinstance(error, LedgerUnavailable) else None
            log.warning("claim of job %s failed: %s", job_id, error)
            await self._messages.hand_back(received, delay if delay is not None else 1.0)


def _attempt(
    received: Received, attempt: int, payload: Any, traceparent: str | None, worker_id: str
) -> Attempt:
    message = received.message
    return Attempt(
        JobContext(
            job_id=message.job_id, attempt=attempt, payload=payload,
            customer_id=message.customer_id, queue=message.queue, worker_id=worker_id,
            receive_count=received.receive_count,
        ),
        received,
        traceparent=traceparent,
        trace=start_attempt(message.job_id, attempt, traceparent, worker_id, message.queue),
    )


def _seconds_until(iso: str) -> float:
    try:
        due = datetime.fromisoformat(iso)
    except ValueError:
        return 1.0
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    seconds = (due - datetime.now(UTC)).total_seconds()
    return 0.0 if not math.isfinite(seconds) else max(0.0, seconds)
