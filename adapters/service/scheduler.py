"""The scheduler's round: release the scheduled jobs that are due (ADR 100).

A delayed enqueue (``run_at``, ``delay_seconds``) and a retry's backoff leave a job
``scheduled``: nothing is sent for it. Every ``interval`` (0.1 s) the scheduler reads the
due ones from ``job_status`` through the partial index on ``not_before``
(``job_status.due_scheduled``), at most ``batch`` (200) of them, and executes
``ReleaseJob`` for them in one batch (one append); each appends ``Released``, which the
log-driven dispatcher sends as it sends ``Enqueued``. A round is bounded: a backlog (after
a stall, or more due than a round takes) is released by further full rounds run at once,
each of at most ``batch`` jobs, never by one big round.

It runs beside the dispatcher (:func:`adapters.service.parts.dispatcher_part`). A release
the view has not caught up with yet is not repeated for a few seconds (remembered by the
job and the time it was due: the same job scheduled again is released at its new time);
one repeated anyway (another scheduler, a restart) is refused by the job (it is no longer
scheduled), so a job is released once. A failed round logs, backs off and opens a fresh session.

On PostgreSQL with the local queue's outbox a round's append commits without waiting for
its WAL flush (:func:`unflushed_releases`): the flush was most of a slow round's wall time, and
a release lost in a server crash is only repeated by the next round (ADR 175).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import anyio
from anyio.abc import TaskStatus

from adapters.service.session_worker import SessionWorker
from ledger.application import JobLedger
from ledger.commands import AnyCommand, ReleaseJob
from ledger.errors import LedgerError
from projections.queries.job_status import JobStatusQueries
from projections.store import ViewStore

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERVAL = 0.1
"""Seconds between rounds: a job is sent at most about this long after it is due."""
BATCH = 200
"""Most jobs released per round (one ``execute_batch``, one append); a full round runs
again at once. Twice what 0.1 s rounds see at 1,000 jobs due a second, so a steady load
never fills a round and a backlog drains at up to 2,000 jobs a second in bounded rounds."""
RECENT_SECONDS = 5.0
"""How long a released job is not released again while the view catches up."""
MAX_BACKOFF = 5.0


class Scheduler(SessionWorker):
    """Releases due scheduled jobs every ``interval``. Call it as a part of a task group."""

    def __init__(
        self,
        store: ViewStore,
        ledger: JobLedger,
        *,
        clock: Callable[[], datetime],
        interval: float = INTERVAL,
        batch: int = BATCH,
        reopen: Callable[[], ViewStore] | None = None,
    ) -> None:
        super().__init__(store, "scheduler", reopen)
        self._ledger = ledger
        self._clock = clock
        self._interval = interval
        self._batch = batch
        self._unflushed = unflushed_releases(ledger)
        self._recent: OrderedDict[tuple[UUID, object], float] = OrderedDict()
        self._after: tuple[UUID, object] | None = None
        """Where the next round reads on after a full one (the view may still list the
        jobs this one released)."""
        self.released = 0
        self.rounds = 0
        self.last_round_seconds = 0.0
        """How long the last round took, wall clock: the due read, the releases' append
        (which hands them to the dispatcher: it follows the log), and the waits for a thread
        and the GIL between them; for the benchmark."""
        self.last_round_cpu = 0.0
        """The CPU time of the last round's work in its threads (the read and the batch)."""
        self.failed_rounds = 0

    async def __call__(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        failures = 0
        while True:
            started = anyio.current_time()
            try:
                full = await self.round() >= self._batch
            except Exception as error:  # the database: back off, a fresh session
                failures += 1
                self.failed_rounds += 1
                delay = min(MAX_BACKOFF, self._interval * 2 ** min(failures - 1, 16))
                log.warning("scheduler: round failed: %s; retrying in %.1fs", error, delay)
                await anyio.sleep(delay)
                await self._sync(self._reconnect)
                continue
            failures = 0
            if not full:
                await anyio.sleep(max(0.0, started + self._interval - anyio.current_time()))

    async def round(self) -> int:
        """One round: read the due jobs and release them in one batch, in one call on a
        worker thread (no hop back to the event loop between the read and the append);
        how many were read (a full batch: more may be due, the next round reads on after
        the last at once)."""
        started = time.perf_counter()
        outcome: tuple[tuple[int, int], float] = await self._sync(
            _on_cpu, self._release_due, self._clock()
        )
        (found, released), self.last_round_cpu = outcome
        self.released += released
        if released:
            log.debug("scheduler: released %d job(s)", released)
        self.rounds += 1
        self.last_round_seconds = time.perf_counter() - started
        return found

    def _release_due(self, now: datetime) -> tuple[int, int]:
        """Read the due jobs, release the ones not released moments ago: (read, released)."""
        due = self._due(now)
        self._after = due[-1] if len(due) >= self._batch else None
        fresh = self._not_recent(due)
        if not fresh:
            return len(due), 0
        commands: list[AnyCommand] = [ReleaseJob(job_id=job_id) for job_id in fresh]
        if self._unflushed is None:
            results = self._ledger.execute_batch(commands, now)
        else:
            with self._unflushed():
                results = self._ledger.execute_batch(commands, now)
            for job_id in fresh:  # ADR 175: no cached version a server crash may take back
                self._ledger.forget(job_id)
        return len(due), sum(1 for r in results if not isinstance(r, LedgerError))

    def _due(self, now: datetime) -> list[tuple[UUID, object]]:
        queries = JobStatusQueries(self._store)
        after = None if self._after is None else (self._after[1], self._after[0])
        return queries.due_scheduled(now, self._batch, after=after)

    def _not_recent(self, due: list[tuple[UUID, object]]) -> list[UUID]:
        """``due`` without the releases made moments ago (the view may lag behind): a
        release is remembered by the job and the time it was due, so the same job
        scheduled again (a retry's backoff after a release that ran and failed at once)
        is released when its new time comes, not when the memory lapses."""
        now = time.monotonic()
        while self._recent and next(iter(self._recent.values())) < now - RECENT_SECONDS:
            self._recent.popitem(last=False)
        fresh = [(job_id, when) for job_id, when in due if (job_id, when) not in self._recent]
        for key in fresh:
            self._recent[key] = now
        return [job_id for job_id, _ in fresh]


def unflushed_releases(ledger: JobLedger) -> Callable[[], AbstractContextManager[None]] | None:
    """How a round's releases commit without waiting for their WAL flush: on PostgreSQL
    with the outbox (ADR 151), where every consumer of a release is in the same database
    (ADR 175: a release lost in a crash is released again, and whatever acts on one appends
    durably after it, which flushes it first); ``None`` elsewhere (durable, as every
    append: the dispatcher sends releases to SQS from the log)."""
    from adapters.postgres.event_recorder import LedgerEventRecorder
    from adapters.postgres.outbox import unflushed_appends

    recorder = getattr(ledger, "recorder", None)  # a test's stand-in may have neither
    if getattr(ledger, "outbox", None) is not None and isinstance(recorder, LedgerEventRecorder):
        return unflushed_appends
    return None


def _on_cpu(func: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``func(*args)`` and the CPU time this thread spent in it."""
    began = time.thread_time()
    result = func(*args)
    return result, time.thread_time() - began
