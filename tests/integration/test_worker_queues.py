"""Receives no handler attempted never dead-letter a job (issue 13), on the local queue
(SQLite): a worker for one logical queue never receives other queues' jobs; a worker that
hands messages back while draining (SIGTERM with messages prefetched) or while the ledger
does not answer its claims does not spend their receive count, and the job completes later."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import pytest

from adapters.local_queue.queue import LocalQueue
from adapters.service.bootstrap import utc_now
from adapters.sqlite.local_queue import SqliteQueueStore
from adapters.sqlite.migrate import migrate
from adapters.worker import InProcessLedger, Worker, WorkerConfig
from adapters.worker.port import ClaimedJob, LedgerPort, LedgerUnavailable
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.errors import LedgerError
from ledger.policies.retry import RetryPolicy
from ledger.ports.transport import JobMessage, Received, Transport
from ledger.status import Status
from tests.support.workers import running

pytestmark = pytest.mark.anyio

MAX_RECEIVES = 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def test_a_worker_for_queue_e_leaves_other_queues_jobs_pending_for_their_worker(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    migrate(path)
    ledger = JobLedger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, stale_threshold=timedelta(seconds=30),
        retry_policy=RetryPolicy(0, 0), draw=lambda: 0.5,
    )
    port = InProcessLedger(ledger, clock=utc_now)
    transport = LocalQueue(
        SqliteQueueStore(path), max_receives=MAX_RECEIVES, visibility_timeout=1.0,
        poll_interval=0.02,
    )

    async def enqueue(queue: str) -> UUID:
        outcome: Any = await asyncio.wrap_future(port.writer.submit(EnqueueJob(
            customer_id="acme", queue=queue, payload=None, max_attempts=3,
        )))
        assert not isinstance(outcome, LedgerError)
        job_id: UUID = outcome.job_id
        await transport.send(JobMessage(
            job_id=job_id, attempt=0, customer_id="acme", queue=queue,
            dedup_key=f"{job_id}:1",
        ))
        return job_id

    def worker(queues: set[str]) -> Worker:
        return Worker(lambda ctx: ctx.queue, transport, port, WorkerConfig(
            queues=frozenset(queues), heartbeat_interval=0.2, receive_wait=0.2,
            mismatch_delay=0.05, worker_id=f"w-{'-'.join(sorted(queues))}",
        ))

    try:
        others = [await enqueue("advc"), await enqueue("default")]
        mine = await enqueue("e")
        async with running(worker({"e"})) as e_worker:
            await until(lambda: ledger.get_job(mine).status == Status.COMPLETED)
            await anyio.sleep(1.0)  # many receive rounds, each longer than max receives
        assert e_worker.stats.received == 1
        assert e_worker.stats.released == 0
        assert await transport.read_dead_letters() == []
        for job_id in others:
            assert ledger.get_job(job_id).status == Status.PENDING

        async with running(worker({"advc", "default"})):
            await until(lambda: all(
                ledger.get_job(j).status == Status.COMPLETED for j in others
            ))
        assert [ledger.get_job(j).attempts_used for j in others] == [1, 1]
    finally:
        await transport.aclose()
        await port.aclose()
        ledger.close()


class Fleet:
    """A ledger in this process, its worker port and the local queue on SQLite."""

    def __init__(self, path: Path) -> None:
        migrate(path)
        self.ledger = JobLedger(
            {"PERSISTENCE_MODULE": "eventsourcing.popo"},
            stale_threshold=timedelta(seconds=30), retry_policy=RetryPolicy(0, 0),
            draw=lambda: 0.5,
        )
        self.port = InProcessLedger(self.ledger, clock=utc_now)
        self.transport = LocalQueue(
            SqliteQueueStore(path), max_receives=MAX_RECEIVES, visibility_timeout=1.0,
            poll_interval=0.02,
        )

    async def enqueue(self) -> UUID:
        outcome: Any = await asyncio.wrap_future(self.port.writer.submit(EnqueueJob(
            customer_id="acme", queue="default", payload=None, max_attempts=3,
        )))
        assert not isinstance(outcome, LedgerError)
        job_id: UUID = outcome.job_id
        await self.transport.send(JobMessage(
            job_id=job_id, attempt=0, customer_id="acme", dedup_key=f"{job_id}:1",
        ))
        return job_id

    def worker(self, transport: Transport, port: LedgerPort, name: str) -> Worker:
        return Worker(lambda ctx: "done", transport, port, WorkerConfig(
            heartbeat_interval=0.2, receive_wait=0.2, worker_id=name, grace=1.0,
        ))

    async def aclose(self) -> None:
        await self.transport.aclose()
        await self.port.aclose()
        self.ledger.close()


@pytest.fixture
async def fleet(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Fleet]:
    fleet = Fleet(tmp_path / "ledger.sqlite3")
    try:
        yield fleet
    finally:
        await fleet.aclose()


class Unreachable:
    """The worker port with a ledger that answers no claim until ``refusals`` ran out."""

    def __init__(self, port: InProcessLedger, refusals: int) -> None:
        self.port = port
        self.refusals = refusals

    async def claim(self, job_id: UUID, worker_id: str) -> ClaimedJob:
        if self.refusals > 0:
            self.refusals -= 1
            raise LedgerUnavailable("connection refused", retry_after=0.0)
        return await self.port.claim(job_id, worker_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)


class DrainedOnReceive:
    """The local queue, draining the worker as each receive returns (SIGTERM arriving
    while the worker holds messages it received and has not claimed)."""

    def __init__(self, transport: LocalQueue) -> None:
        self.transport = transport
        self.worker: Worker | None = None

    async def receive(self, **kwargs: Any) -> list[Received]:
        got = await self.transport.receive(**kwargs)
        if self.worker is not None:
            self.worker.drain()
        return got

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def test_claims_the_ledger_does_not_answer_never_dead_letter_the_job(
    fleet: Fleet,
) -> None:
    job_id = await fleet.enqueue()
    port = Unreachable(fleet.port, refusals=MAX_RECEIVES + 3)
    worker = fleet.worker(fleet.transport, port, "w-unreachable")

    async with running(worker):
        await until(lambda: fleet.ledger.get_job(job_id).status == Status.COMPLETED)

    assert port.refusals == 0
    assert worker.stats.released == MAX_RECEIVES + 3
    assert await fleet.transport.read_dead_letters() == []
    assert fleet.ledger.get_job(job_id).attempts_used == 1


async def test_messages_handed_back_while_draining_never_dead_letter_the_job(
    fleet: Fleet,
) -> None:
    job_id = await fleet.enqueue()
    for n in range(MAX_RECEIVES + 3):
        draining = DrainedOnReceive(fleet.transport)
        worker = fleet.worker(draining, fleet.port, f"w-drained-{n}")
        draining.worker = worker
        with anyio.fail_after(10):
            stats = await worker.run()
        assert (stats.received, stats.released, stats.claimed) == (1, 1, 0)

    assert await fleet.transport.read_dead_letters() == []
    assert fleet.ledger.get_job(job_id).status == Status.PENDING
    async with running(fleet.worker(fleet.transport, fleet.port, "w-after")):
        await until(lambda: fleet.ledger.get_job(job_id).status == Status.COMPLETED)
    assert fleet.ledger.get_job(job_id).attempts_used == 1
