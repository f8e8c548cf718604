"""Operator controls end to end on PostgreSQL with SQS (moto's server on 127.0.0.1; issue
14, ADR 100): the dispatcher and the scheduler of ``ledger serve`` send to real SQS queues,
real workers of the SDK receive from them, an operator acts through the ledger.

Every queue here has a max receive count of 2, so a receive that counted where it should
not would dead-letter the message: the dead-letter queue stays empty in every test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
import pytest
from aiobotocore.session import get_session

from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.parts import dispatcher_part, projection_part
from adapters.service.settings import Settings
from adapters.worker import InProcessLedger, JobContext, Worker, WorkerConfig
from ledger.commands import CancelJob, EnqueueJob, PauseQueue, ResumeQueue, SetQueueLimit
from ledger.job import Job
from ledger.ports.transport import Transport
from ledger.status import Status
from tests.support.sqs import REGION, SqsQueues, add_queue, create_queues

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

HEARTBEAT = 0.5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Sqs:
    """The queues of one test: the shared queue, two priority bands, the dead letters."""

    queues: SqsQueues
    urgent: str  # priorities 50..100
    high: str  # priorities 1..49

    def urls(self) -> dict[str, str]:
        return {"main": self.queues.queue_url, "urgent": self.urgent, "high": self.high,
                "dlq": self.queues.dlq_url}


@pytest.fixture
def sqs(sqs_queues: SqsQueues) -> Sqs:
    queues = create_queues(sqs_queues.endpoint, max_receive_count=2)
    return Sqs(queues, add_queue(queues, "urgent"), add_queue(queues, "high"))


@pytest.fixture
def container(sqs: Sqs, postgres_url: str, tmp_path: Any) -> Iterator[Container]:
    settings = Settings(
        ledger_data_dir=tmp_path, database_url=postgres_url,
        sqs_queue_url=sqs.queues.queue_url, sqs_dlq_url=sqs.queues.dlq_url,
        sqs_priority_queue_urls=((50, sqs.urgent), (1, sqs.high)),
    )
    container = build(settings)
    try:
        yield container
    finally:
        container.close()


async def depth(sqs: Sqs, which: str) -> int:
    """Messages on one queue: visible, in flight and delayed."""
    names: list[Any] = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    async with get_session().create_client(
        "sqs", region_name=REGION, endpoint_url=sqs.queues.endpoint
    ) as client:
        answer: Any = await client.get_queue_attributes(
            QueueUrl=sqs.urls()[which], AttributeNames=names
        )
    return sum(int(answer["Attributes"][name]) for name in names)


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


async def until_depth(sqs: Sqs, which: str, count: int, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while await depth(sqs, which) != count:
            await anyio.sleep(0.1)


@asynccontextmanager
async def serving(container: Container) -> AsyncIterator[Transport]:
    """The projection runner, the dispatcher and the scheduler of ``ledger serve``."""
    transport = build_transport(container.settings, container.backend)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(projection_part(container, poll_interval=0.1))
            await tg.start(dispatcher_part(container, transport))
            try:
                yield transport
            finally:
                tg.cancel_scope.cancel()
    finally:
        await transport.aclose()


@asynccontextmanager
async def workers(
    container: Container, handler: Any, count: int = 1, concurrency: int = 1
) -> AsyncIterator[list[Worker]]:
    """``count`` workers, each with a transport and an in-process port of its own."""
    started: list[Worker] = []
    closers: list[Any] = []
    try:
        async with anyio.create_task_group() as tg:
            for n in range(count):
                transport = build_transport(container.settings, container.backend)
                port = InProcessLedger(container.ledger, clock=utc_now)
                closers += [transport.aclose, port.aclose]
                worker = Worker(handler, transport, port, WorkerConfig(
                    concurrency=concurrency, heartbeat_interval=HEARTBEAT, receive_wait=0.2,
                    worker_id=f"sqs-w{n}", grace=5,
                ))
                await tg.start(worker.run)
                started.append(worker)
            try:
                yield started
            finally:
                for worker in started:
                    worker.drain()
    finally:
        for close in closers:
            await close()


def enqueue(container: Container, **fields: Any) -> UUID:
    fields.setdefault("customer_id", "acme")
    job_id: UUID = container.ledger.execute(EnqueueJob(**fields), utc_now()).job_id
    return job_id


def status(container: Container, job_id: UUID) -> Status:
    return container.ledger.get_job(job_id).status


def history_types(container: Container, job_id: UUID) -> list[str]:
    return [type(e).__name__ for e in container.ledger.history(job_id)]


async def test_cancel_of_a_pending_job_on_sqs_drops_its_message_without_an_attempt(
    container: Container, sqs: Sqs
) -> None:
    async with serving(container):
        job_id = enqueue(container)
        await until_depth(sqs, "main", 1)  # the dispatcher sent it
        container.ledger.execute(CancelJob(job_id=job_id, actor="cli:ops"), utc_now())
        assert status(container, job_id) == Status.CANCELLED
        async with workers(container, lambda ctx: "ran") as (worker,):
            await until(lambda: worker.stats.received >= 1)
            await until_depth(sqs, "main", 0)
        assert worker.stats.claimed == worker.stats.completed == 0
    assert "Claimed" not in history_types(container, job_id)
    assert container.ledger.get_job(job_id).attempts_used == 0
    assert await depth(sqs, "dlq") == 0


async def test_cancel_of_a_running_job_on_sqs_stops_its_handler(
    container: Container, sqs: Sqs
) -> None:
    running_now, stopped = threading.Event(), list[float]()

    async def sleepy(ctx: JobContext) -> str:
        running_now.set()
        try:
            await anyio.sleep(30)
        finally:
            stopped.append(time.monotonic())
        return "slept"

    async with serving(container), workers(container, sleepy) as (worker,):
        job_id = enqueue(container)
        await until(running_now.is_set)
        await anyio.sleep(HEARTBEAT * 2)  # the message's visibility was extended meanwhile
        asked = time.monotonic()
        container.ledger.execute(
            CancelJob(job_id=job_id, actor="cli:ops", reason="wrong invoice"), utc_now()
        )
        await until(lambda: status(container, job_id) == Status.CANCELLED, HEARTBEAT + 2)
        await until_depth(sqs, "main", 0)
        assert stopped
        assert stopped[0] - asked < HEARTBEAT + 1
        assert worker.stats.cancelled == 1
        assert worker.stats.completed == 0
    ended = [e for e in container.ledger.history(job_id) if isinstance(e, Job.Cancelled)]
    assert [(e.by, e.attempt, e.reason) for e in ended] == [("worker", 1, "wrong invoice")]
    assert await depth(sqs, "dlq") == 0


async def test_a_delayed_job_is_held_in_the_ledger_not_on_sqs_and_sent_when_due(
    container: Container, sqs: Sqs
) -> None:
    done: dict[UUID, float] = {}

    def record(ctx: JobContext) -> str:
        done[ctx.job_id] = time.monotonic()
        return "ran"

    async with serving(container):
        enqueued = time.monotonic()
        soon = enqueue(container, delay_seconds=3)
        later = enqueue(container, delay_seconds=20 * 60)  # beyond DelaySeconds' 15 minutes
        assert status(container, soon) == status(container, later) == Status.SCHEDULED
        await anyio.sleep(1.5)
        assert [await depth(sqs, q) for q in ("main", "high", "urgent")] == [0, 0, 0]
        async with workers(container, record):
            await until(lambda: soon in done)
        assert done[soon] - enqueued >= 3
        assert "Released" in history_types(container, soon)
        assert status(container, later) == Status.SCHEDULED
        assert await depth(sqs, "main") == 0
    assert await depth(sqs, "dlq") == 0


async def test_priority_bands_are_queues_of_their_own_polled_highest_first(
    container: Container, sqs: Sqs
) -> None:
    order: list[UUID] = []
    async with serving(container):
        low, mid, top = (enqueue(container, priority=p) for p in (0, 10, 60))
        for which in ("main", "high", "urgent"):
            await until_depth(sqs, which, 1)  # each band got its job
        async with workers(container, lambda ctx: order.append(ctx.job_id)):
            await until(lambda: len(order) == 3)
    assert order == [top, mid, low]
    assert await depth(sqs, "dlq") == 0


async def test_pause_holds_sends_and_hands_back_received_messages_uncounted(
    container: Container, sqs: Sqs
) -> None:
    ran: list[UUID] = []
    async with serving(container):
        on_sqs = enqueue(container, queue="mail")
        await until_depth(sqs, "main", 1)
        container.ledger.control_queue(
            PauseQueue(queue="mail", actor="cli:ops", reason="smtp down"), utc_now()
        )
        held = enqueue(container, queue="mail")
        async with workers(container, lambda ctx: ran.append(ctx.job_id)) as (worker,):
            # more hand-backs than the max receive count of 2: none of them counted
            await until(lambda: worker.stats.released >= 3, timeout=30)
            assert await depth(sqs, "main") == 1  # the held job was never sent
            assert ran == []
            container.ledger.control_queue(ResumeQueue(queue="mail", actor="cli:ops"),
                                           utc_now())
            await until(lambda: len(ran) == 2, timeout=30)
    assert sorted(ran) == sorted([on_sqs, held])
    for job_id in (on_sqs, held):
        assert container.ledger.get_job(job_id).attempts_used == 1
        assert status(container, job_id) == Status.COMPLETED
    assert await depth(sqs, "dlq") == 0


async def test_a_cap_of_two_holds_across_three_workers(
    container: Container, sqs: Sqs
) -> None:
    state = {"now": 0, "most": 0}
    done: list[UUID] = []

    async def busy(ctx: JobContext) -> str:
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        try:
            await anyio.sleep(0.3)
        finally:
            state["now"] -= 1
        done.append(ctx.job_id)
        return "done"

    container.ledger.control_queue(
        SetQueueLimit(queue="reports", actor="cli:ops", max_running=2), utc_now()
    )
    async with serving(container):
        jobs = [enqueue(container, queue="reports", max_attempts=1) for _ in range(8)]
        async with workers(container, busy, count=3, concurrency=3):
            await until(lambda: len(done) == 8, timeout=60)
    assert state["most"] == 2
    assert sorted(done) == sorted(jobs)
    assert [container.ledger.get_job(j).attempts_used for j in jobs] == [1] * 8
    assert await depth(sqs, "dlq") == 0
