"""Cancel a sleeping handler and see it stop (issue 14, ADR 100).

A real worker (the local queue in the ledger's own database, SQLite or PostgreSQL) runs a
handler that would sleep 30 s; an operator cancels the job through the ledger; the
handler stops within one heartbeat interval + 1 s, the worker reports it, the message is
deleted and the job is ``cancelled`` by the worker. Over HTTP the worker learns it from
its heartbeat's answer; in-process from the ledger's cache, sooner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.settings import Settings
from adapters.worker import HttpLedger, InProcessLedger, JobContext, Worker, WorkerConfig
from adapters.worker.port import LedgerPort
from ledger.access import Role, new_key
from ledger.commands import CancelJob, EnqueueJob
from ledger.job import Job
from ledger.ports.transport import JobMessage, Transport
from ledger.status import Status
from tests.support.http import serve_in_thread

pytestmark = pytest.mark.anyio

HEARTBEAT = 0.5
"""The worker's heartbeat interval: a cancel takes effect within it + 1 s."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def container(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    url = str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    container = build(Settings(ledger_data_dir=tmp_path, database_url=url))
    try:
        yield container
    finally:
        container.close()


@dataclass
class Started:
    """A handler's progress as the test sees it (from the handler's own thread or task)."""

    running: threading.Event
    stopped_at: list[float]


@contextmanager
def port_for(container: Container, how: str) -> Iterator[tuple[LedgerPort, str]]:
    """The worker's port (in-process, or over a real HTTP server with a worker key)."""
    if how == "inprocess":
        yield InProcessLedger(container.ledger, clock=utc_now), how
        return
    key, record = new_key(Role.WORKER, None, None, utc_now())
    container.backend.key_store().add(record)
    with serve_in_thread(build_http(container)) as running:
        yield HttpLedger(running.base_url, key, call_timeout=5), how


@asynccontextmanager
async def a_worker(
    container: Container, port: LedgerPort, handler: Any
) -> AsyncIterator[tuple[Worker, Transport]]:
    transport = build_transport(container.settings, container.backend)
    worker = Worker(handler, transport, port, WorkerConfig(
        heartbeat_interval=HEARTBEAT, receive_wait=0.2, worker_id="cancel-w1", grace=5,
    ))
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            try:
                yield worker, transport
            finally:
                worker.drain()
    finally:
        await port.aclose()
        await transport.aclose()


async def enqueue(container: Container, transport: Transport) -> UUID:
    outcome = container.ledger.execute(
        EnqueueJob(customer_id="acme", payload={"seconds": 30}), utc_now()
    )
    if container.ledger.outbox is None:  # else the enqueue wrote its message (ADR 151);
        # a second one raced the test's "message deleted" check (received after the cancel)
        await transport.send(JobMessage(
            job_id=outcome.job_id, attempt=0, customer_id="acme",
            dedup_key=f"{outcome.job_id}:1",
        ))
    job_id: UUID = outcome.job_id
    return job_id


def sleepy_async(seen: Started) -> Any:
    async def handler(ctx: JobContext) -> str:
        seen.running.set()
        try:
            await anyio.sleep(ctx.payload["seconds"])
        finally:
            seen.stopped_at.append(time.monotonic())
        return "slept"

    return handler


def sleepy_plain(seen: Started) -> Any:
    def handler(ctx: JobContext) -> str:
        seen.running.set()
        deadline = time.monotonic() + ctx.payload["seconds"]
        while time.monotonic() < deadline:
            if ctx.cancelled:  # what a long plain handler polls
                seen.stopped_at.append(time.monotonic())
                ctx.raise_if_cancelled()
            time.sleep(0.02)
        return "slept"

    return handler


async def until(predicate: Any, timeout: float) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


@pytest.mark.parametrize("how", ["inprocess", "http"])
@pytest.mark.parametrize("kind", ["async", "plain"])
async def test_cancel_a_sleeping_handler_and_see_it_stop(
    container: Container, how: str, kind: str
) -> None:
    seen = Started(threading.Event(), [])
    handler = (sleepy_async if kind == "async" else sleepy_plain)(seen)
    with port_for(container, how) as (port, _):
        async with a_worker(container, port, handler) as (worker, transport):
            job_id = await enqueue(container, transport)
            await until(seen.running.is_set, timeout=10)
            await anyio.sleep(HEARTBEAT * 1.5)  # a heartbeat or two while it sleeps
            cancelled_at = time.monotonic()
            outcome = container.ledger.execute(
                CancelJob(job_id=job_id, actor="cli:operator", reason="wrong invoice"),
                utc_now(),
            )
            assert outcome.status == Status.IN_PROGRESS
            await until(lambda: bool(seen.stopped_at), timeout=HEARTBEAT + 1)
            await until(
                lambda: container.ledger.get_job(job_id).status == Status.CANCELLED,
                timeout=HEARTBEAT + 1,
            )
            took = time.monotonic() - cancelled_at
            await until(lambda: worker.stats.cancelled == 1, timeout=1)
            assert worker.stats.completed == worker.stats.failed == 0
            assert await transport.receive(wait_seconds=0.3) == []  # message deleted
    assert seen.stopped_at[0] - cancelled_at < HEARTBEAT + 1
    assert took < HEARTBEAT + 1
    if how == "inprocess":  # the cache told it before a heartbeat could
        assert seen.stopped_at[0] - cancelled_at < HEARTBEAT
    history = container.ledger.history(job_id)
    requested = [e for e in history if isinstance(e, Job.CancelRequested)]
    ended = [e for e in history if isinstance(e, Job.Cancelled)]
    assert [(e.actor, e.reason) for e in requested] == [("cli:operator", "wrong invoice")]
    assert [(e.by, e.attempt) for e in ended] == [("worker", 1)]
    assert not any(isinstance(e, Job.Completed | Job.Failed) for e in history)
