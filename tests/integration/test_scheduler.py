"""Delayed jobs wait in the ledger and are released when due (issue 14, ADR 100).

The real parts of ``ledger serve`` (projection runner, dispatcher with the scheduler's
round beside it) and a real worker, on SQLite and PostgreSQL with the local queue in the
same database: a job enqueued with ``delay_seconds=2`` is ``scheduled``, nothing is sent
for it, then the scheduler releases it (``Released``), the dispatcher sends it and the
worker completes it, about 2 s later and never before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import anyio
import pytest

from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.parts import dispatcher_part, projection_part
from adapters.service.scheduler import RECENT_SECONDS, Scheduler
from adapters.service.settings import Settings
from adapters.worker import InProcessLedger, JobContext, Worker, WorkerConfig
from ledger.commands import ClaimJob, EnqueueJob, FailJob
from ledger.job import Job
from ledger.status import Status
from projections.queries.job_status import JobStatusQueries

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def container(store: str, store_url: str | None, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        ledger_data_dir=tmp_path / "data", database_url=store_url,
        retry_base_delay_seconds=1.5, retry_max_delay_seconds=1.5,
    )
    wired = build(settings)
    yield wired
    wired.close()


def names(container: Container, job_id: UUID) -> list[str]:
    return [type(e).__name__ for e in container.ledger.history(job_id)]


@stores
def test_a_delayed_job_is_scheduled_then_released_and_completed_when_due(
    container: Container,
) -> None:
    ledger = container.ledger
    ran_at: dict[UUID, float] = {}

    async def handler(ctx: JobContext) -> str:
        ran_at[ctx.job_id] = time.monotonic()
        return "on time"

    async def main() -> None:
        transport = build_transport(container.settings, container.backend)
        port = InProcessLedger(ledger, clock=utc_now)
        worker = Worker(handler, transport, port, WorkerConfig(
            heartbeat_interval=0.5, receive_wait=0.2, worker_id="sched-w1",
        ))
        async with anyio.create_task_group() as tg:
            await tg.start(projection_part(container, poll_interval=0.05))
            await tg.start(dispatcher_part(container, transport))
            await tg.start(worker.run)
            enqueued_at = time.monotonic()
            now = utc_now()
            delayed = ledger.execute(EnqueueJob(customer_id="acme", delay_seconds=2), now)
            at_once = ledger.execute(EnqueueJob(customer_id="acme"), now)
            assert delayed.status == Status.SCHEDULED
            assert ledger.get_job(delayed.job_id).not_before == now + timedelta(seconds=2)
            with anyio.fail_after(15):
                while delayed.job_id not in ran_at or at_once.job_id not in ran_at:
                    assert ledger.get_job(delayed.job_id).status != Status.COMPLETED or \
                        time.monotonic() - enqueued_at >= 2
                    await anyio.sleep(0.02)
                while ledger.get_job(delayed.job_id).status != Status.COMPLETED:
                    await anyio.sleep(0.02)
            waited = ran_at[delayed.job_id] - enqueued_at
            assert 2.0 <= waited < 2.0 + 1.5, waited  # a round (0.2 s) + dispatch + receive
            assert ran_at[at_once.job_id] - enqueued_at < 1.5  # the other one went at once
            worker.drain()
            tg.cancel_scope.cancel()
        await port.aclose()
        await transport.aclose()

    anyio.run(main)
    delayed_id = max(ran_at, key=ran_at.__getitem__)
    assert names(container, delayed_id) == ["Enqueued", "Released", "Claimed", "Completed"]


@stores
def test_a_retry_waits_out_its_backoff_as_scheduled(container: Container) -> None:
    """A retry's backoff is the same path: the failed job is scheduled, released when its
    backoff (about 1.5 s, with jitter) is over, then run again."""
    ledger = container.ledger
    runs: list[float] = []

    async def handler(ctx: JobContext) -> str:
        runs.append(time.monotonic())
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "second time lucky"

    async def main() -> UUID:
        transport = build_transport(container.settings, container.backend)
        port = InProcessLedger(ledger, clock=utc_now)
        worker = Worker(handler, transport, port, WorkerConfig(
            heartbeat_interval=0.5, receive_wait=0.2, worker_id="sched-w2",
        ))
        async with anyio.create_task_group() as tg:
            await tg.start(projection_part(container, poll_interval=0.05))
            await tg.start(dispatcher_part(container, transport))
            await tg.start(worker.run)
            job_id = ledger.execute(EnqueueJob(customer_id="acme"), utc_now()).job_id
            with anyio.fail_after(15):
                while ledger.get_job(job_id).status != Status.SCHEDULED:
                    await anyio.sleep(0.02)
                while ledger.get_job(job_id).status != Status.COMPLETED:
                    await anyio.sleep(0.02)
            worker.drain()
            tg.cancel_scope.cancel()
        await port.aclose()
        await transport.aclose()
        result: UUID = job_id
        return result

    job_id = anyio.run(main)
    assert len(runs) == 2
    assert names(container, job_id) == [
        "Enqueued", "Claimed", "Failed", "Requeued", "Released", "Claimed", "Completed",
    ]
    requeued, released = (e for e in container.ledger.history(job_id)
                          if isinstance(e, Job.Requeued | Job.Released))
    assert isinstance(requeued, Job.Requeued)
    assert requeued.not_before is not None
    assert requeued.not_before <= released.timestamp < requeued.not_before + timedelta(seconds=1)


@stores
def test_the_round_reads_only_due_jobs_and_releases_them_once(container: Container) -> None:
    ledger = container.ledger
    now = utc_now()
    due = [ledger.execute(EnqueueJob(customer_id="acme", delay_seconds=0.05), now).job_id
           for _ in range(30)]
    later = ledger.execute(EnqueueJob(customer_id="acme", delay_seconds=3600), now).job_id

    async def main() -> tuple[int, int]:
        store = container.backend.open_views()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(projection_part(container, poll_interval=0.05))
                with anyio.fail_after(10):
                    while len(JobStatusQueries(store).due_scheduled(utc_now(), 100)) < 30:
                        await anyio.sleep(0.05)
                scheduler = Scheduler(store, ledger, clock=utc_now, batch=20)
                first = await scheduler.round()  # 20: a full page
                second = await scheduler.round()  # the other 10, read on after the first 20
                await scheduler.round()  # the view may still say scheduled: not again
                tg.cancel_scope.cancel()
            return first + second, scheduler.released
        finally:
            store.close()

    tried, released = anyio.run(main)
    assert (tried, released) == (30, 30)
    assert all(ledger.get_job(j).status == Status.PENDING for j in due)
    assert ledger.get_job(later).status == Status.SCHEDULED
    assert [type(e) for e in ledger.history(due[0])][-1] is Job.Released


@stores
def test_a_job_scheduled_again_soon_after_a_release_is_released_when_due(
    container: Container,
) -> None:
    """The round does not repeat a release for a few seconds while the view catches up;
    that memory was by job alone, so a job released, run and failed at once, its retry
    due 1.5 s later, waited out the rest of those seconds (4 s late in ``ledger demo``)."""
    ledger = container.ledger
    job = ledger.execute(EnqueueJob(customer_id="acme", delay_seconds=0.05), utc_now()).job_id

    async def main() -> float:
        store = container.backend.open_views()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(projection_part(container, poll_interval=0.05))
                scheduler = Scheduler(store, ledger, clock=utc_now)

                async def released_when_due(count: int) -> None:
                    with anyio.fail_after(10):
                        while names(container, job).count("Released") < count:
                            await scheduler.round()
                            await anyio.sleep(0.05)

                await released_when_due(1)
                first = time.monotonic()
                ledger.execute(ClaimJob(job_id=job, worker_id="w"), utc_now())
                ledger.execute(FailJob(job_id=job, attempt=1, worker_id="w", error="boom"),
                               utc_now())  # fmt: skip
                await released_when_due(2)  # its retry, 1.5 s after the failure
                tg.cancel_scope.cancel()
            return time.monotonic() - first
        finally:
            store.close()

    between = anyio.run(main)
    assert between < RECENT_SECONDS  # released when due, not when the memory lapsed
    assert ledger.get_job(job).status == Status.PENDING
