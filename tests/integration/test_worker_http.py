"""The worker over the real HTTP API (uvicorn on 127.0.0.1, API keys, the embedded ledger).

The transport is the in-memory local queue (the messages are the test's); every ledger
call is an HTTP request with a worker's key: claims carry the payload, heartbeats go in
batches, a 409 on a report or a heartbeat abandons the attempt, a refused key stops the
worker.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
import pytest

from adapters.http.app import HttpParts
from adapters.http.wiring import build_http
from adapters.local_queue.queue import LocalQueue
from adapters.memory.queue import memory_transport
from adapters.service.backend import backend_for
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from adapters.worker import Beat, HttpLedger, JobContext, Worker, WorkerAccessDenied, WorkerConfig
from ledger.access import Role, new_key
from ledger.commands import AnyCommand, ClaimJob, CompleteJob, DetectStale, EnqueueJob, FailJob
from ledger.errors import LedgerError
from ledger.job import Job
from ledger.policies.retry import RetryPolicy
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.support.http import RunningApi, serve_in_thread

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class PartitionableHttpLedger(HttpLedger):
    partitioned = False

    async def heartbeats(
        self, worker_id: str, attempts: Sequence[tuple[UUID, int]]
    ) -> dict[UUID, Beat]:
        if self.partitioned:
            return {job_id: Beat.UNKNOWN for job_id, _ in attempts}
        return await super().heartbeats(worker_id, attempts)


@dataclass
class Served:
    container: Container
    parts: HttpParts
    running: RunningApi
    worker_key: str
    service_key: str

    def execute(self, command: AnyCommand) -> Any:
        result = self.parts.writer.batch.submit(command).result(timeout=10)
        if isinstance(result, LedgerError):
            raise result
        return result

    def job(self, job_id: UUID) -> Job:
        return self.container.ledger.get_job(job_id)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = Settings(
        ledger_data_dir=tmp_path_factory.mktemp("worker-http"),
        stale_threshold_minutes=0.2 / 60, retry_base_delay_seconds=0,
        retry_max_delay_seconds=0,
    )
    container = build(settings)
    keys = backend_for(settings).key_store()
    worker_key, record = new_key(Role.WORKER, None, None, utc_now())
    keys.add(record)
    service_key, record = new_key(Role.SERVICE, None, None, utc_now())
    keys.add(record)
    parts = build_http(container)
    try:
        with serve_in_thread(parts) as running:
            yield Served(container, parts, running, worker_key, service_key)
    finally:
        container.close()


@pytest.fixture
def transport() -> LocalQueue:
    return memory_transport(poll_interval=0.01)


async def enqueue(served: Served, transport: LocalQueue, payload: Any = None) -> UUID:
    outcome = served.execute(EnqueueJob(customer_id="acme", payload=payload))
    await send(served, transport, outcome.job_id)
    job_id: UUID = outcome.job_id
    return job_id


async def send(served: Served, transport: LocalQueue, job_id: UUID) -> None:
    job = served.job(job_id)
    await transport.send(JobMessage(
        job_id=job_id, attempt=job.attempt, customer_id="acme",
        dedup_key=f"{job_id}:{job.version}",
    ))


@asynccontextmanager
async def working(
    served: Served, transport: LocalQueue, handler: Callable[..., Any], *,
    key: str | None = None, **config: Any,
) -> AsyncIterator[tuple[Worker, PartitionableHttpLedger]]:
    port = PartitionableHttpLedger(
        served.running.base_url, served.worker_key if key is None else key, call_timeout=5
    )
    config.setdefault("heartbeat_interval", 0.1)
    config.setdefault("receive_wait", 0.5)
    config.setdefault("worker_id", "http-w1")
    worker = Worker(handler, transport, port, WorkerConfig(**config))
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            try:
                yield worker, port
            finally:
                worker.drain()
    finally:
        await port.aclose()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def test_jobs_run_over_http_with_their_payload_and_heartbeats(
    served: Served, transport: LocalQueue
) -> None:
    async def handler(ctx: JobContext) -> dict[str, Any]:
        await anyio.sleep(0.45)
        return {"echo": ctx.payload}

    first = await enqueue(served, transport, {"n": 1})
    second = await enqueue(served, transport, {"n": 2})
    async with working(served, transport, handler, concurrency=2) as (worker, _):
        await until(lambda: all(
            served.job(j).status == Status.COMPLETED for j in (first, second)
        ))
        await send(served, transport, first)  # a duplicate: dropped, handler not called
        await until(lambda: worker.stats.duplicates == 1)
    assert served.job(first).result == {"echo": {"n": 1}}
    assert served.job(second).result == {"echo": {"n": 2}}
    assert served.job(first).heartbeats >= 2
    assert worker.stats.completed == 2


async def test_a_report_answered_409_is_not_completed(
    served: Served, transport: LocalQueue
) -> None:
    finish = anyio.Event()

    async def handler(ctx: JobContext) -> str:
        await finish.wait()
        return "late"

    job_id = await enqueue(served, transport)
    async with working(served, transport, handler) as (worker, port):
        port.partitioned = True
        await until(lambda: served.job(job_id).status == Status.IN_PROGRESS)
        await anyio.sleep(0.3)  # past the 0.2 s threshold without heartbeats
        served.execute(DetectStale(job_id=job_id, attempt=1, detected_by="test"))
        served.execute(ClaimJob(job_id=job_id, worker_id="http-w2"))
        finish.set()
        await until(lambda: worker.stats.superseded == 1)
    served.execute(CompleteJob(job_id=job_id, attempt=2, worker_id="http-w2", result="w2"))
    history = served.container.ledger.history(job_id)
    assert [e.worker_id for e in history if isinstance(e, Job.Completed)] == ["http-w2"]
    assert [e.report for e in history if isinstance(e, Job.ReportRefused)] == ["complete"]


async def test_a_heartbeat_answered_superseded_cancels_the_handler(
    served: Served, transport: LocalQueue
) -> None:
    cancelled = anyio.Event()

    async def handler(ctx: JobContext) -> None:
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    job_id = await enqueue(served, transport)
    async with working(served, transport, handler) as (worker, port):
        port.partitioned = True
        await until(lambda: served.job(job_id).status == Status.IN_PROGRESS)
        await anyio.sleep(0.3)
        served.execute(DetectStale(job_id=job_id, attempt=1, detected_by="test"))
        served.execute(ClaimJob(job_id=job_id, worker_id="http-w2"))
        port.partitioned = False
        with anyio.fail_after(5):
            await cancelled.wait()
        await until(lambda: worker.stats.superseded == 1)
    assert served.job(job_id).worker_id == "http-w2"
    assert worker.stats.completed == worker.stats.failed == 0


async def test_an_early_claim_answered_409_job_not_due_waits_until_due(
    served: Served, transport: LocalQueue
) -> None:
    job_id = served.execute(EnqueueJob(customer_id="acme")).job_id
    served.execute(ClaimJob(job_id=job_id, worker_id="w0"))
    ledger = served.container.ledger
    ledger.retry_policy, before = RetryPolicy(1.0, 1.0), ledger.retry_policy
    try:
        served.execute(FailJob(job_id=job_id, attempt=1, worker_id="w0", error="boom"))
    finally:
        ledger.retry_policy = before
    not_before = served.job(job_id).not_before
    assert not_before is not None
    await send(served, transport, job_id)
    ran_at: list[float] = []
    async with working(served, transport, lambda ctx: ran_at.append(time.time())) as (w, _):
        await until(lambda: served.job(job_id).status == Status.COMPLETED)
    assert w.stats.released >= 1
    assert ran_at[0] >= not_before.timestamp()


@pytest.mark.parametrize("which", ["unknown", "service"])
async def test_a_refused_key_stops_the_worker_and_leaves_the_job_pending(
    served: Served, transport: LocalQueue, which: str
) -> None:
    key = "jl_not_a_key" if which == "unknown" else served.service_key
    job_id = await enqueue(served, transport)
    calls: list[JobContext] = []
    with anyio.fail_after(10):
        async with working(served, transport, calls.append, key=key) as (worker, _):
            while not worker.draining:
                await anyio.sleep(0.02)
    assert isinstance(worker.fatal, WorkerAccessDenied)
    assert calls == []
    assert served.job(job_id).status == Status.PENDING
    assert len(await transport.receive(max_messages=10)) == 1  # released for others

