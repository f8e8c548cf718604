"""A real worker on a controlled queue (issue 14, ADR 100): a claim refused because the
job's queue is paused or at its cap hands the message back without counting the receive
and leaves the queue alone for a moment, so a capped queue runs all its jobs one at a
time and none is dead-lettered, even with a max receive count of 2; over HTTP the claim's
429 ``queue_paused`` / ``queue_at_capacity`` maps back to the ledger's errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.local_queue.queue import LocalQueue
from adapters.memory.queue import memory_transport
from adapters.service.backend import backend_for
from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from adapters.sqlite.local_queue import SqliteQueueStore
from adapters.sqlite.migrate import migrate
from adapters.worker import HttpLedger, InProcessLedger, JobContext, Worker, WorkerConfig
from ledger.access import Role, new_key
from ledger.application import JobLedger
from ledger.commands import EnqueueJob, PauseQueue, ResumeQueue, SetQueueLimit
from ledger.errors import LedgerError, QueueAtCapacity, QueuePaused
from ledger.policies.retry import RetryPolicy
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.support.http import RunningApi, serve_in_thread
from tests.support.workers import running

pytestmark = pytest.mark.anyio

MAX_RECEIVES = 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


class OneAtATime:
    """A handler that sleeps and records the most handlers that ran at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def __call__(self, ctx: JobContext) -> str:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await anyio.sleep(0.15)
        finally:
            self.now -= 1
        return "done"


async def test_a_queue_capped_at_one_runs_five_jobs_one_at_a_time_none_dead_lettered(
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
        SqliteQueueStore(path), max_receives=MAX_RECEIVES, visibility_timeout=5.0,
        poll_interval=0.02,
    )
    ledger.control_queue(SetQueueLimit(queue="reports", actor="cli:ops", max_running=1),
                         utc_now())
    handler = OneAtATime()
    try:
        jobs = []
        for _ in range(5):
            outcome: Any = await asyncio.wrap_future(port.writer.submit(EnqueueJob(
                customer_id="acme", queue="reports", payload=None, max_attempts=1,
            )))
            assert not isinstance(outcome, LedgerError)
            jobs.append(outcome.job_id)
            await transport.send(JobMessage(
                job_id=outcome.job_id, attempt=0, customer_id="acme", queue="reports",
                dedup_key=f"{outcome.job_id}:1",
            ))
        config = WorkerConfig(concurrency=5, heartbeat_interval=0.2, receive_wait=0.2,
                              worker_id="capped")
        async with running(Worker(handler, transport, port, config)) as worker:
            await until(lambda: all(
                ledger.get_job(j).status == Status.COMPLETED for j in jobs
            ))
        assert handler.most == 1
        assert worker.stats.completed == 5
        assert worker.stats.released >= 4  # refused claims were handed back
        assert [ledger.get_job(j).attempts_used for j in jobs] == [1] * 5
        assert await transport.read_dead_letters() == []
        queue = ledger.get_queue("reports")
        assert queue is not None
        assert queue.running == {}
    finally:
        await transport.aclose()
        await port.aclose()
        ledger.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, RunningApi, str]]:
    settings = Settings(ledger_data_dir=tmp_path_factory.mktemp("worker-queues"))
    container = build(settings)
    key, record = new_key(Role.WORKER, None, None, utc_now())
    backend_for(settings).key_store().add(record)
    try:
        with serve_in_thread(build_http(container)) as served:
            yield container, served, key
    finally:
        container.close()


async def test_over_http_a_paused_queue_answers_the_claim_429_and_the_worker_waits(
    api: tuple[Any, RunningApi, str],
) -> None:
    container, served, key = api
    ledger: JobLedger = container.ledger
    ledger.control_queue(PauseQueue(queue="paused", actor="cli:ops", reason="deploy"),
                         utc_now())
    job_id: UUID = ledger.execute(
        EnqueueJob(customer_id="acme", queue="paused", payload=None), utc_now()
    ).job_id
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        answer = await client.post(
            f"/jobs/{job_id}/claim", json={"worker_id": "probe"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["code"] == "queue_paused"

    port = HttpLedger(served.base_url, key, call_timeout=5)
    try:
        with pytest.raises(QueuePaused):
            await port.claim(job_id, "probe")
        transport = memory_transport(max_receives=MAX_RECEIVES, poll_interval=0.01)
        await transport.send(JobMessage(
            job_id=job_id, attempt=0, customer_id="acme", queue="paused",
            dedup_key=f"{job_id}:1",
        ))
        config = WorkerConfig(heartbeat_interval=0.2, receive_wait=0.2, worker_id="http")
        async with running(Worker(lambda ctx: "done", transport, port, config)) as worker:
            await until(lambda: worker.stats.released >= 1)
            await anyio.sleep(0.5)
            assert ledger.get_job(job_id).status == Status.PENDING
            ledger.control_queue(ResumeQueue(queue="paused", actor="cli:ops"), utc_now())
            await until(lambda: ledger.get_job(job_id).status == Status.COMPLETED)
        assert await transport.read_dead_letters() == []
        assert ledger.get_job(job_id).attempts_used == 1
    finally:
        await port.aclose()


async def test_over_http_a_full_queue_maps_back_to_queue_at_capacity(
    api: tuple[Any, RunningApi, str],
) -> None:
    container, served, key = api
    ledger: JobLedger = container.ledger
    ledger.control_queue(SetQueueLimit(queue="full", actor="cli:ops", max_running=1),
                         utc_now())
    first, second = (
        ledger.execute(EnqueueJob(customer_id="acme", queue="full", payload=None),
                       utc_now()).job_id
        for _ in range(2)
    )
    port = HttpLedger(served.base_url, key, call_timeout=5)
    try:
        await port.claim(first, "w1")
        with pytest.raises(QueueAtCapacity) as refused:
            await port.claim(second, "w2")
        assert (refused.value.queue, refused.value.max_running) == ("full", 1)
    finally:
        await port.aclose()
