"""What the HTTP handlers use, one concern each: the ledger's write path (:class:`Writer`),
a job's reads (:class:`JobReads`), the views' sessions (:class:`ReadPool`), and what
``/health`` judges by (:class:`HealthSettings`, :class:`Uptime`).

Everything synchronous (the ledger, the view stores) runs off the event loop: writes go
through the :class:`~adapters.service.batching.BatchWriter` (its futures are awaited, so concurrent
requests share transactions), reads through :class:`ReadPool` in worker threads.
:func:`adapters.http.app.create_app` hands each to the routes that name it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar
from uuid import UUID

import anyio
import anyio.to_thread

from adapters.http.problems import ApiError
from adapters.http.ratelimit import Limiter
from adapters.http.wakeups import wakeups_of
from adapters.service.batching import BatchWriter
from ledger.access import Principal
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, Outcome
from ledger.errors import JobNotFound, LedgerError, StoreUnavailable
from ledger.job import Job
from projections.queries.job_status import JobStatus, JobStatusQueries, status_of_job
from projections.store import ViewStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReadPool:
    """Sessions on the views, one per concurrent reader, reopened after a failure.

    A view store is one database session used from one thread at a time; the pool lends
    one to each call of :meth:`use` (opening another when all are busy) and keeps up to
    ``size`` idle ones. A call that fails closes its session instead of returning it, so a
    database that went away and came back is reconnected to on the next call.
    """

    def __init__(self, open_store: Callable[[], ViewStore], size: int = 4) -> None:
        self._open = open_store
        self._size = size
        self._idle: list[ViewStore] = []
        self._lock = threading.Lock()

    def use(self, read: Callable[[ViewStore], T]) -> T:
        """``read`` on an idle session, or a new one. An idle session the database no
        longer answers on (it restarted) is closed with every other idle one, and ``read``
        runs once more on a fresh session."""
        with self._lock:
            store = self._idle.pop() if self._idle else None
        if store is not None:
            try:
                return self._keep(store, read(store))
            except StoreUnavailable:
                _close_quietly(store)
                self.close()  # idle through the same failure
            except BaseException:
                _close_quietly(store)
                raise
        store = self._open()
        try:
            return self._keep(store, read(store))
        except BaseException:
            _close_quietly(store)
            raise

    def _keep(self, store: ViewStore, result: T) -> T:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(store)
                return result
        _close_quietly(store)
        return result

    async def read(self, read: Callable[[ViewStore], T]) -> T:
        return await anyio.to_thread.run_sync(self.use, read)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for store in idle:
            _close_quietly(store)


def _close_quietly(store: ViewStore) -> None:
    try:
        store.close()
    except Exception as error:  # a session that is already broken
        log.debug("closing a view session failed: %s", error)


@dataclass
class Writer:
    """The ledger's write path for handlers: commands through the batch writer, so
    concurrent requests share transactions."""

    batch: BatchWriter
    limiter: Limiter
    """Asked whether the database is reachable (its probe retries every second)."""
    timeout: float = 10.0
    """Seconds a request waits for the ledger to confirm its write."""

    async def execute(self, command: AnyCommand) -> Outcome:
        """Run one command through the batch writer; raise its named error if refused."""
        (result,) = await self.execute_many([command])
        if isinstance(result, LedgerError):
            raise result
        return result

    async def execute_many(self, commands: Sequence[AnyCommand]) -> list[Result]:
        """Run commands through the batch writer together; one result each, in order.

        While the limiter finds the database unreachable (its probe retries every second)
        writes are refused at once with 503 instead of queueing behind a writer that is
        waiting for connections; a write the ledger has not confirmed within ``timeout``
        seconds is answered 503 too (it may still be applied: clients retry with their
        idempotency key).
        """
        if self.limiter.database_unreachable:
            raise ApiError(
                503, "the database is unreachable; try again shortly",
                code="database_unavailable", headers={"Retry-After": "1"},
            )
        futures = [self.batch.submit(c) for c in commands]
        try:
            return await _all_done(futures, self.timeout)
        except TimeoutError:
            raise ApiError(
                503, f"the ledger did not confirm the write within {self.timeout:g}s; "
                "it may still be applied", code="write_timeout", headers={"Retry-After": "1"},
            ) from None


@dataclass
class JobReads:
    """One job as handlers read it: its status (the view, else the ledger), its payload,
    its history, and whether a caller may see it."""

    views: ReadPool
    ledger: JobLedger
    _customers: OrderedDict[UUID, str] = field(default_factory=OrderedDict)

    async def job_status(self, job_id: UUID) -> JobStatus:
        """The job as the job_status view has it, or as the ledger has it while the view
        has not caught up yet (a job just enqueued); :class:`JobNotFound` if none."""
        row = await self.views.read(lambda store: JobStatusQueries(store).get(job_id))
        if row is not None:
            return row
        job = await anyio.to_thread.run_sync(self.ledger.get_job, job_id)
        return status_of_job(job)

    async def payload(self, job_id: UUID) -> object:
        """The job's payload, from the ledger."""
        return await anyio.to_thread.run_sync(self.ledger.payload_of, job_id)

    async def history(self, job_id: UUID) -> list[Job.Event]:
        """Every event of the job from the ledger, oldest first."""
        return await anyio.to_thread.run_sync(self.ledger.history, job_id)

    async def customer_of(self, job_id: UUID) -> str | None:
        """The customer a job belongs to (it never changes), or ``None`` if no such job."""
        known = self._customers.get(job_id)
        if known is not None:
            return known
        try:
            customer = (await self.job_status(job_id)).customer_id
        except JobNotFound:
            return None
        self._customers[job_id] = customer
        while len(self._customers) > 100_000:
            self._customers.popitem(last=False)
        return customer

    async def check_job_access(self, principal: Principal, job_id: UUID) -> None:
        """404 (as if the job did not exist) for a job of another customer."""
        if principal.customer_id is None:
            return
        customer = await self.customer_of(job_id)
        if customer is None or not principal.sees_customer(customer):
            raise JobNotFound(job_id)


@dataclass(frozen=True)
class JobWrites:
    """The worker routes' one dependency (heartbeat, complete, fail, claim): the write
    path and the job's reads. Litestar resolves two or more dependencies of a route in an
    anyio task group, a task each, on every request; one dependency is resolved inline
    (ADR 198)."""

    writer: Writer
    jobs: JobReads


@dataclass(frozen=True)
class HealthSettings:
    """What ``/health`` judges the views' figures by."""

    stale_threshold: timedelta
    """Silence after which a job in progress counts as stale."""
    stale_unhealthy: int = 5
    """Stale jobs at which ``/health`` says unhealthy (503)."""
    max_lag: int = 10_000
    """Events a view may lag behind the log before ``/health`` says degraded."""
    metric_queues: frozenset[str] = frozenset({"default"})
    """Queues with series of their own on ``/metrics``; the others are summed as ``other``."""


@dataclass
class Uptime:
    """Seconds since the API was built."""

    started: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return time.monotonic() - self.started


async def _all_done(futures: Sequence[Future[Result]], timeout: float) -> list[Result]:
    """The results of the writer's futures, with one wake-up of the event loop for all of
    them (not one per future, as ``asyncio.wrap_future`` each would); ``TimeoutError``
    after ``timeout`` seconds. The timeout is one timer of the loop on the one future
    awaited, not an anyio cancel scope (ADR 198: entering and leaving one looked up the
    current task and its scopes on every request)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    left = [len(futures)]
    lock = threading.Lock()
    wakeups = wakeups_of(loop)

    def finished(_: Future[Result]) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            wakeups.settle_soon(done)  # one wake-up for the requests of a batch (ADR 198)

    if futures:
        for future in futures:
            future.add_done_callback(finished)
        timer = loop.call_later(timeout, _expire, done)
        try:
            await done
        finally:
            timer.cancel()
    return [future.result() for future in futures]


def _expire(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_exception(TimeoutError())


__all__ = ["HealthSettings", "JobReads", "JobWrites", "ReadPool", "Uptime", "Writer"]
