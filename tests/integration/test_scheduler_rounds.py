"""The scheduler's round is bounded, and several schedulers release each due job once
(issue 14, ADR 100).

On SQLite and PostgreSQL: a backlog of due jobs is released by rounds of at most the
scheduler's batch, each one ``execute_batch`` (one append), never by one big round; and
three schedulers of three separate ledgers (as three ``ledger serve`` processes would
run them, each with its own cache) racing over the same due jobs leave exactly one
``Released`` per job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

import anyio
import pytest

from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.parts import projection_part
from adapters.service.scheduler import BATCH, Scheduler
from adapters.service.settings import Settings
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, EnqueueJob
from ledger.job import Job
from ledger.status import Status
from projections.queries.job_status import JobStatusQueries
from projections.store import ViewStore

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def settings(store: str, store_url: str | None, tmp_path: Path) -> Settings:
    return Settings(ledger_data_dir=tmp_path / "data", database_url=store_url)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    wired = build(settings)
    yield wired
    wired.close()


class CountingLedger:
    """The ledger, noting the size of each batch the scheduler executes."""

    def __init__(self, inner: JobLedger) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def execute_batch(self, commands: Sequence[AnyCommand], now: datetime) -> list[Result]:
        self.batches.append(len(commands))
        return self.inner.execute_batch(commands, now)


def due_jobs(ledger: JobLedger, count: int) -> list[UUID]:
    now = utc_now()
    commands: list[AnyCommand] = [
        EnqueueJob(customer_id="acme", delay_seconds=0.05) for _ in range(count)
    ]
    return [r.job_id for r in ledger.execute_batch(commands, now)
            if not isinstance(r, Exception)]


async def until_listed(container: Container, store: ViewStore, count: int) -> None:
    """Wait until the view lists ``count`` due scheduled jobs (the runner is running)."""
    with anyio.fail_after(20):
        while len(JobStatusQueries(store).due_scheduled(utc_now(), count + 1)) < count:
            await anyio.sleep(0.05)


def releases(ledger: JobLedger, job_id: UUID) -> int:
    return sum(isinstance(e, Job.Released) for e in ledger.history(job_id))


@stores
def test_a_backlog_is_released_by_rounds_of_at_most_the_batch(container: Container) -> None:
    """450 jobs due at once (a stall, a burst): rounds of 200 (the default), not one of
    450."""
    ledger = container.ledger
    jobs = due_jobs(ledger, 450)
    counting = CountingLedger(ledger)

    async def main() -> list[int]:
        store = container.backend.open_views()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(projection_part(container, poll_interval=0.05))
                await until_listed(container, store, 450)
                scheduler = Scheduler(store, counting, clock=utc_now)  # type: ignore[arg-type]
                found = [await scheduler.round() for _ in range(3)]
                tg.cancel_scope.cancel()
            return found
        finally:
            store.close()

    found = anyio.run(main)
    assert BATCH == 200
    assert found == [200, 200, 50]  # full rounds read on after the last; then the rest
    assert counting.batches == [200, 200, 50]  # one execute_batch (one append) each
    assert all(releases(ledger, j) == 1 for j in jobs)
    assert all(ledger.get_job(j).status == Status.PENDING for j in jobs)


@stores
def test_several_schedulers_release_each_due_job_once(
    container: Container, settings: Settings
) -> None:
    jobs = due_jobs(container.ledger, 150)
    others = [build(settings) for _ in range(2)]  # two more processes' ledgers
    ledgers = [container.ledger, *(o.ledger for o in others)]

    async def main() -> list[int]:
        sessions = [container.backend.open_views() for _ in ledgers]
        schedulers = [Scheduler(s, ledger, clock=utc_now, batch=40, interval=0.02)
                      for s, ledger in zip(sessions, ledgers, strict=True)]
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(projection_part(container, poll_interval=0.05))
                await until_listed(container, sessions[0], 150)
                for scheduler in schedulers:
                    tg.start_soon(scheduler)
                with anyio.fail_after(30):
                    while sum(s.released for s in schedulers) < 150:
                        await anyio.sleep(0.05)
                await anyio.sleep(0.3)  # more rounds, over a view that still lags
                tg.cancel_scope.cancel()
            return [s.released for s in schedulers]
        finally:
            for session in sessions:
                session.close()

    try:
        released = anyio.run(main)
    finally:
        for other in others:
            other.close()
    assert sum(released) == 150, released
    assert all(releases(container.ledger, j) == 1 for j in jobs)
