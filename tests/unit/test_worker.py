"""The worker on the in-memory transport and an in-memory ledger (eventsourcing's POPO).

Every behaviour of docs/adr/0040-worker-sdk.md: completion, failure and retry, heartbeats
and visibility, a superseded attempt (detected by a report or by a heartbeat), duplicate
and early messages, concurrency, queues, and drains.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import anyio
import pytest

from adapters.local_queue.queue import LocalQueue
from adapters.memory.queue import MemoryQueueStore, memory_transport
from adapters.service.bootstrap import utc_now
from adapters.worker import (
    SHUTTING_DOWN,
    Beat,
    HandlerNotFound,
    InProcessLedger,
    JobContext,
    Worker,
    WorkerConfig,
    default_heartbeat_interval,
    load_handler,
)
from ledger.application import JobLedger
from ledger.commands import AnyCommand, ClaimJob, CompleteJob, DetectStale, EnqueueJob, FailJob
from ledger.errors import ConcurrencyExhausted, LedgerError
from ledger.job import Job
from ledger.policies.retry import RetryPolicy
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.support.workers import running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FlakyPort(InProcessLedger):
    """The in-process port with a switch that loses heartbeats (a network partition)."""

    partitioned = False

    async def heartbeats(
        self, worker_id: str, attempts: Sequence[tuple[UUID, int]]
    ) -> dict[UUID, Beat]:
        if self.partitioned:
            return {job_id: Beat.UNKNOWN for job_id, _ in attempts}
        return await super().heartbeats(worker_id, attempts)


@dataclass
class Rig:
    ledger: JobLedger
    store: MemoryQueueStore
    transport: LocalQueue
    port: FlakyPort

    async def execute(self, command: AnyCommand) -> Any:
        result = await asyncio.wrap_future(self.port.writer.submit(command))
        if isinstance(result, LedgerError):
            raise result
        return result

    async def enqueue(self, payload: Any = None, *, queue: str = "default",
                      max_attempts: int = 3, send: bool = True) -> UUID:
        outcome = await self.execute(EnqueueJob(
            customer_id="acme", queue=queue, payload=payload, max_attempts=max_attempts
        ))
        if send:
            await self.send(outcome.job_id, queue=queue)
        job_id: UUID = outcome.job_id
        return job_id

    async def send(self, job_id: UUID, *, queue: str = "default") -> None:
        job = self.ledger.get_job(job_id)
        await self.transport.send(JobMessage(
            job_id=job_id, attempt=job.attempt, customer_id="acme", queue=queue,
            dedup_key=f"{job_id}:{job.version}",
        ))

    def job(self, job_id: UUID) -> Job:
        return self.ledger.get_job(job_id)

    def events(self, job_id: UUID) -> list[str]:
        return [type(e).__name__ for e in self.ledger.history(job_id)]

    async def queued(self) -> int:
        """Messages another receiver could take now (taken back at once)."""
        other = memory_transport(self.store)
        found = await other.receive(max_messages=10)
        for received in found:
            await other.release(received)
        return len(found)

    def worker(self, handler: Callable[..., Any], **config: Any) -> Worker:
        config.setdefault("heartbeat_interval", 0.05)
        config.setdefault("receive_wait", 0.5)
        config.setdefault("worker_id", "w1")
        return Worker(handler, self.transport, self.port, WorkerConfig(**config))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    ledger = JobLedger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, stale_threshold=timedelta(seconds=0.2),
        retry_policy=RetryPolicy(0, 0), draw=lambda: 0.5,
    )
    store = MemoryQueueStore()
    port = FlakyPort(ledger, clock=utc_now)
    try:
        yield Rig(ledger, store, memory_transport(store, poll_interval=0.01), port)
    finally:
        await port.aclose()
        ledger.close()


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


# -- completion, failure, retry ------------------------------------------------------------


async def test_an_async_handler_completes_the_job_with_its_result(rig: Rig) -> None:
    seen: list[JobContext] = []

    async def handler(ctx: JobContext) -> dict[str, Any]:
        seen.append(ctx)
        return {"doubled": ctx.payload["n"] * 2}

    job_id = await rig.enqueue({"n": 21})
    async with running(rig.worker(handler)) as worker:
        await until(lambda: rig.job(job_id).status == Status.COMPLETED)
    assert rig.job(job_id).result == {"doubled": 42}
    (ctx,) = seen
    assert (ctx.job_id, ctx.attempt, ctx.customer_id, ctx.queue) == (job_id, 1, "acme", "default")
    assert ctx.worker_id == "w1"
    assert not ctx.cancelled
    assert await rig.queued() == 0  # the message is deleted
    assert (worker.stats.claimed, worker.stats.completed, worker.stats.failed) == (1, 1, 0)


async def test_a_plain_handler_runs_in_a_thread(rig: Rig) -> None:
    threads: list[threading.Thread] = []

    def handler(ctx: JobContext) -> str:
        threads.append(threading.current_thread())
        time.sleep(0.05)
        return "done"

    job_id = await rig.enqueue()
    async with running(rig.worker(handler)):
        await until(lambda: rig.job(job_id).status == Status.COMPLETED)
    assert rig.job(job_id).result == "done"
    assert threads[0] is not threading.main_thread()


async def test_a_failure_is_reported_and_each_retry_runs_until_dead_lettered(rig: Rig) -> None:
    def handler(ctx: JobContext) -> None:
        raise ValueError(f"bad input on attempt {ctx.attempt}")

    job_id = await rig.enqueue(max_attempts=3)
    async with running(rig.worker(handler)) as worker:
        for attempt in (1, 2, 3):
            await until(lambda a=attempt: (  # type: ignore[misc]
                rig.job(job_id).attempt == a and rig.job(job_id).status != Status.IN_PROGRESS
            ))
            assert await rig.queued() == 0  # deleted: the ledger's Requeued is a new message
            if attempt < 3:
                assert rig.job(job_id).status == Status.PENDING
                await rig.send(job_id)  # what the dispatcher does with Requeued
    job = rig.job(job_id)
    assert job.status == Status.DEAD_LETTERED
    assert job.last_error == "ValueError: bad input on attempt 3"
    assert rig.events(job_id).count("Failed") == 3
    assert worker.stats.failed == 3


async def test_a_result_that_is_not_json_fails_the_attempt(rig: Rig) -> None:
    job_id = await rig.enqueue(max_attempts=1)
    async with running(rig.worker(lambda ctx: object())):
        await until(lambda: rig.job(job_id).status == Status.DEAD_LETTERED)
    assert (rig.job(job_id).last_error or "").startswith("the result is not JSON")


# -- heartbeats and visibility -------------------------------------------------------------


async def test_heartbeats_and_visibility_extensions_while_the_handler_runs(rig: Rig) -> None:
    release = anyio.Event()

    async def handler(ctx: JobContext) -> None:
        await release.wait()

    job_id = await rig.enqueue()
    worker = rig.worker(handler, heartbeat_interval=0.05, visibility_timeout=0.15)
    async with running(worker):
        await until(lambda: rig.job(job_id).heartbeats >= 6)
        # 0.3 s and more after the claim, the message's 0.15 s visibility was extended:
        assert await rig.queued() == 0
        release.set()
        await until(lambda: rig.job(job_id).status == Status.COMPLETED)
    assert worker.stats.heartbeats >= 6
    assert "ReportRefused" not in rig.events(job_id)


@pytest.mark.parametrize(
    ("threshold", "interval"), [(600.0, 30.0), (60.0, 15.0), (3.0, 0.75), (121.0, 30.0)]
)
def test_the_default_heartbeat_interval_is_min_30s_and_a_quarter_threshold(
    threshold: float, interval: float
) -> None:
    assert default_heartbeat_interval(threshold) == interval


# -- superseded attempts -------------------------------------------------------------------


async def test_a_superseded_attempt_is_not_completed(rig: Rig) -> None:
    """The job goes stale (the worker's heartbeats are lost), another worker claims it;
    the first worker's completion is refused and recorded, never applied."""
    finish = anyio.Event()

    async def handler(ctx: JobContext) -> str:
        await finish.wait()
        return "late"

    job_id = await rig.enqueue()
    rig.port.partitioned = True
    async with running(rig.worker(handler)) as worker:
        await until(lambda: rig.job(job_id).status == Status.IN_PROGRESS)
        await anyio.sleep(0.25)  # past the 0.2 s stale threshold
        await rig.execute(DetectStale(job_id=job_id, attempt=1, detected_by="test"))
        await rig.execute(ClaimJob(job_id=job_id, worker_id="w2"))
        finish.set()
        await until(lambda: worker.stats.superseded == 1)
        await rig.execute(CompleteJob(job_id=job_id, attempt=2, worker_id="w2", result="w2"))
    job = rig.job(job_id)
    assert (job.status, job.result, job.worker_id) == (Status.COMPLETED, "w2", "w2")
    completions = [e for e in rig.ledger.history(job_id) if isinstance(e, Job.Completed)]
    assert [c.worker_id for c in completions] == ["w2"]
    refused = [e for e in rig.ledger.history(job_id) if isinstance(e, Job.ReportRefused)]
    assert [(r.worker_id, r.report, r.attempt) for r in refused] == [("w1", "complete", 1)]
    assert worker.stats.completed == 0
    assert await rig.queued() == 0


@pytest.mark.parametrize("plain", [False, True], ids=["async", "plain"])
async def test_a_heartbeat_answered_superseded_cancels_the_handler(rig: Rig, plain: bool) -> None:
    contexts: list[JobContext] = []
    stopped = threading.Event()

    async def async_handler(ctx: JobContext) -> None:
        contexts.append(ctx)
        try:
            await anyio.sleep(60)
        finally:
            stopped.set()

    def plain_handler(ctx: JobContext) -> None:
        contexts.append(ctx)
        while not ctx.cancelled:
            time.sleep(0.01)
        stopped.set()

    job_id = await rig.enqueue()
    rig.port.partitioned = True
    worker = rig.worker(plain_handler if plain else async_handler)
    async with running(worker):
        await until(lambda: rig.job(job_id).status == Status.IN_PROGRESS)
        await anyio.sleep(0.25)
        await rig.execute(DetectStale(job_id=job_id, attempt=1, detected_by="test"))
        await rig.execute(ClaimJob(job_id=job_id, worker_id="w2"))
        rig.port.partitioned = False  # the partition heals: the next heartbeat is refused
        await until(stopped.is_set)
        await until(lambda: worker.stats.superseded == 1)
    assert contexts[0].superseded
    assert rig.job(job_id).status == Status.IN_PROGRESS  # still w2's
    assert rig.job(job_id).worker_id == "w2"
    assert [e.report for e in rig.ledger.history(job_id) if isinstance(e, Job.ReportRefused)] \
        == ["heartbeat"]
    assert worker.stats.failed == worker.stats.completed == 0


# -- messages that are not for this worker, or not yet -------------------------------------


async def test_a_duplicate_message_is_deleted_without_calling_the_handler(rig: Rig) -> None:
    calls: list[UUID] = []
    done = await rig.enqueue(send=False)
    await rig.execute(ClaimJob(job_id=done, worker_id="w0"))
    await rig.execute(CompleteJob(job_id=done, attempt=1, worker_id="w0"))
    busy = await rig.enqueue(send=False)
    await rig.execute(ClaimJob(job_id=busy, worker_id="w0"))
    await rig.send(done)
    await rig.send(busy)
    async with running(rig.worker(lambda ctx: calls.append(ctx.job_id))) as worker:
        await until(lambda: worker.stats.duplicates == 2)
    assert calls == []
    assert await rig.queued() == 0
    assert rig.events(done) == ["Enqueued", "Claimed", "Completed"]


async def test_an_early_message_is_released_until_the_job_is_due(rig: Rig) -> None:
    rig.ledger.retry_policy = RetryPolicy(0.6, 0.6)  # draw 0.5: a 0.45 s delay
    job_id = await rig.enqueue(send=False)
    await rig.execute(ClaimJob(job_id=job_id, worker_id="w0"))
    await rig.execute(FailJob(job_id=job_id, attempt=1, worker_id="w0", error="boom"))
    not_before = rig.job(job_id).not_before
    assert not_before is not None
    await rig.send(job_id)
    claimed_at: list[float] = []
    async with running(rig.worker(lambda ctx: claimed_at.append(time.time()))) as worker:
        await until(lambda: rig.job(job_id).status == Status.COMPLETED)
    assert worker.stats.released >= 1
    assert claimed_at[0] >= not_before.timestamp()


async def test_a_worker_for_one_queue_leaves_other_queues_jobs_alone(rig: Rig) -> None:
    mine = await rig.enqueue(queue="reports")
    other = await rig.enqueue(queue="emails")
    worker = rig.worker(lambda ctx: ctx.queue, queues=frozenset({"reports"}),
                        mismatch_delay=60)
    async with running(worker):
        await until(lambda: rig.job(mine).status == Status.COMPLETED)
        await anyio.sleep(0.2)
    # The transport's receive filters by queue: the other message is never received.
    assert (worker.stats.received, worker.stats.released) == (1, 0)
    assert rig.job(other).status == Status.PENDING
    assert rig.events(other) == ["Enqueued"]


# -- concurrency ---------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_n_jobs_run_at_once(rig: Rig, concurrency: int) -> None:
    active = 0
    peak = 0

    async def handler(ctx: JobContext) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.1)
        active -= 1

    ids = [await rig.enqueue({"n": n}) for n in range(7)]
    worker = rig.worker(handler, concurrency=concurrency)
    async with running(worker):
        await until(lambda: all(rig.job(i).status == Status.COMPLETED for i in ids))
    assert peak == concurrency
    assert worker.stats.completed == 7


# -- draining ------------------------------------------------------------------------------


async def test_a_drain_lets_running_jobs_finish_within_the_grace_period(rig: Rig) -> None:
    async def handler(ctx: JobContext) -> str:
        await anyio.sleep(0.3)
        return "finished"

    job_id = await rig.enqueue()
    worker = rig.worker(handler, grace=5)
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        await until(lambda: rig.job(job_id).status == Status.IN_PROGRESS)
        worker.drain()
    assert rig.job(job_id).status == Status.COMPLETED
    later = await rig.enqueue()
    await anyio.sleep(0.1)
    assert rig.job(later).status == Status.PENDING  # nothing received after the drain


@pytest.mark.parametrize("plain", [False, True], ids=["async", "plain"])
async def test_a_drain_interrupts_after_the_grace_period_and_reports_the_failure(
    rig: Rig, plain: bool
) -> None:
    async def async_handler(ctx: JobContext) -> None:
        await anyio.sleep(60)

    def plain_handler(ctx: JobContext) -> None:
        for _ in range(6000):
            ctx.raise_if_cancelled()
            time.sleep(0.01)

    job_id = await rig.enqueue()
    worker = rig.worker(plain_handler if plain else async_handler, grace=0.2)
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        await until(lambda: rig.job(job_id).status == Status.IN_PROGRESS)
        worker.drain()
    assert time.monotonic() - started < 3
    job = rig.job(job_id)
    assert (job.status, job.last_error) == (Status.PENDING, SHUTTING_DOWN)  # retried
    assert worker.stats.interrupted == 1
    assert await rig.queued() == 0


async def test_a_second_drain_interrupts_at_once(rig: Rig) -> None:
    async def handler(ctx: JobContext) -> None:
        await anyio.sleep(60)

    job_id = await rig.enqueue()
    worker = rig.worker(handler, grace=60)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            await until(lambda: rig.job(job_id).status == Status.IN_PROGRESS)
            worker.drain()
            await anyio.sleep(0.1)
            assert rig.job(job_id).status == Status.IN_PROGRESS  # still heartbeating
            worker.drain()
    assert rig.job(job_id).last_error == SHUTTING_DOWN


# -- handlers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("adapters.worker.examples", "not of the form module:function"),
        ("no_such_module_x:run", "no module named 'no_such_module_x'"),
        ("adapters.worker.examples:missing", "has no 'missing'"),
        ("adapters.worker.examples:__doc__", "is not callable"),
        ("os:getcwd", "must accept one argument"),
    ],
)
def test_a_bad_handler_path_is_one_clear_error(path: str, reason: str) -> None:
    with pytest.raises(HandlerNotFound, match=reason):
        load_handler(path)


def test_a_handler_path_loads_the_function() -> None:
    from adapters.worker import examples

    assert load_handler("adapters.worker.examples:sleepy") is examples.sleepy


async def test_a_report_that_lost_to_other_writers_is_sent_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``concurrency_exhausted`` (other writers of the job or its capped queue won every
    try) means the report was not applied: the worker sends it again, as when the ledger
    did not answer, instead of dropping the completion."""
    calls = [0]
    complete = rig.port.complete

    async def contended(job_id: UUID, attempt: int, worker_id: str, result: Any) -> str:
        calls[0] += 1
        if calls[0] <= 2:
            raise ConcurrencyExhausted()
        return await complete(job_id, attempt, worker_id, result)

    monkeypatch.setattr(rig.port, "complete", contended)

    async def handler(ctx: JobContext) -> dict[str, int]:
        return {"n": 1}

    job_id = await rig.enqueue()
    async with running(rig.worker(handler)) as worker:
        await until(lambda: rig.job(job_id).status == Status.COMPLETED)
    assert calls[0] == 3
    assert worker.stats.completed == 1
    assert await rig.queued() == 0  # the message deleted once the report was applied
