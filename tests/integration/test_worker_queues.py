"""A worker for one logical queue on the local queue (SQLite): other queues' jobs are never
received by it, so they are never dead-lettered for receives no handler attempted, and a
worker for their queue runs them later (issue 13)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.errors import LedgerError
from ledger.policies.retry import RetryPolicy
from ledger.ports.transport import JobMessage
from ledger.status import Status

pytestmark = pytest.mark.anyio

MAX_RECEIVES = 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        try:
            yield worker
        finally:
            worker.drain()


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
