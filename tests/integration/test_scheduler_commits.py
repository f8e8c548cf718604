"""The scheduler's releases commit without waiting for their WAL flush (ADR 175).

On PostgreSQL with the local queue's outbox a round's one append runs the unflushed outbox
function, whose transaction commits with ``synchronous_commit = off``; every other append
stays durable; the round leaves no released job in the process's cache (a version a server
crash could take back); and after a crash that loses a round's releases, the next round
releases the jobs again, each once, with one queue row each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import psycopg
import pytest

from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.parts import projection_part
from adapters.service.scheduler import Scheduler
from adapters.service.settings import Settings
from ledger.commands import AnyCommand, EnqueueJob
from ledger.job import Job
from ledger.status import Status
from projections.queries.job_status import JobStatusQueries
from projections.store import ViewStore
from tests.support.pg import PostgresServer

pytestmark = pytest.mark.postgres

EMPTY_CALL = (
    "SELECT * FROM {function}('{{}}'::uuid[], '{{}}'::bigint[], '{{}}'::text[], "
    "'{{}}'::bytea[], 'default', '{{}}'::integer[], '{{}}'::uuid[], '{{}}'::uuid[], "
    "'{{}}'::integer[], '{{}}'::text[], '{{}}'::float8[], '{{}}'::float8[], '{{}}'::text[], "
    "'{{}}'::integer[])"
)


@pytest.fixture
def container(postgres_url: str, tmp_path: Path) -> Iterator[Container]:
    wired = build(Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url))
    yield wired
    wired.close()


class Statements:
    """Every statement psycopg runs in this process, as text."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts: list[str] = []
        original = psycopg.Cursor.execute

        def execute(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
            text = query.as_string(cursor.connection) if hasattr(query, "as_string") else query
            self.texts.append(str(text))
            return original(cursor, query, *args, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", execute)

    def calls(self, function: str) -> int:
        return sum(f'"{function}"(' in text for text in self.texts)


def due_jobs(container: Container, count: int) -> list[UUID]:
    commands: list[AnyCommand] = [
        EnqueueJob(customer_id="acme", delay_seconds=0.05) for _ in range(count)
    ]
    return [r.job_id for r in container.ledger.execute_batch(commands, utc_now())
            if not isinstance(r, Exception)]


async def listed(store: ViewStore, jobs: list[UUID]) -> None:
    """Until exactly ``jobs`` are listed due: the view caught up with their enqueues and
    with every release before them."""
    with anyio.fail_after(20):
        while {j for j, _ in JobStatusQueries(store).due_scheduled(
            utc_now(), len(jobs) + 1
        )} != set(jobs):
            await anyio.sleep(0.05)


def one_round(container: Container, jobs: list[UUID]) -> int:
    """Run the projection runner until ``jobs`` are listed due, stop it, then one round."""

    async def main() -> int:
        store = container.backend.open_views()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(projection_part(container, poll_interval=0.05))
                await listed(store, jobs)
                tg.cancel_scope.cancel()
            # the runner stopped first: its durable commit of the releases' view rows
            # would flush the round's WAL too
            return await Scheduler(store, container.ledger, clock=utc_now).round()
        finally:
            store.close()

    return anyio.run(main)


def queue_rows(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT job_id FROM local_queue_messages")]


def releases(container: Container, job_id: UUID) -> int:
    return sum(isinstance(e, Job.Released) for e in container.ledger.history(job_id))


def test_a_rounds_releases_are_one_unflushed_append(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = container.settings.database_url
    assert url is not None
    assert container.ledger.outbox is not None
    jobs = due_jobs(container, 30)
    statements = Statements(monkeypatch)
    assert one_round(container, jobs) == 30
    assert statements.calls("jobledger_events_append_outbox_unflushed") == 1
    assert statements.calls("jobledger_events_append_outbox") == 0  # the durable one
    assert sorted(queue_rows(url)) == sorted(map(str, jobs))
    assert all(container.ledger.get_job(j).status == Status.PENDING for j in jobs)
    assert all(container.ledger._jobs.copy_of(j) is None for j in jobs)
    later = due_jobs(container, 1)[0]  # any other append is durable, as before
    statements.texts.clear()
    container.ledger.execute_batch([EnqueueJob(customer_id="acme")], utc_now())
    assert statements.calls("jobledger_events_append_new_job") == 1  # ADR 212
    assert statements.calls("jobledger_events_append_outbox_unflushed") == 0
    assert container.ledger.get_job(later).status == Status.SCHEDULED


def test_the_unflushed_append_commits_asynchronously(
    postgres_url: str, container: Container
) -> None:
    with psycopg.connect(postgres_url) as conn:
        for function, mode in (
            ("jobledger_events_append_outbox", "on"),
            ("jobledger_events_append_outbox_unflushed", "off"),
        ):
            with conn.transaction(force_rollback=True):
                conn.execute(EMPTY_CALL.format(function=function))
                row = conn.execute("SHOW synchronous_commit").fetchone()
                assert row is not None
                assert row[0] == mode, function


def test_releases_lost_in_a_crash_are_released_again_once(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    """The WAL writer held back (10 s), so the round's commit is still in the server's WAL
    buffers when it is killed: the releases are lost, together with their queue rows, and
    the next round releases the jobs again."""
    if not postgres_server.supports_restart:
        pytest.skip("this PostgreSQL cannot be stopped by the tests")
    settings = Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url)
    for _ in range(3):
        jobs = crash_after_a_round(postgres_server, settings)
        if jobs:
            break
    else:
        pytest.fail("three times something flushed the round's WAL before the kill")
    container = build(settings)
    try:
        ours = set(map(str, jobs))  # a try whose releases stood left its queue rows
        assert sum(releases(container, j) for j in jobs) == 0
        assert ours.isdisjoint(queue_rows(postgres_url))
        assert all(container.ledger.get_job(j).status == Status.SCHEDULED for j in jobs)
        assert one_round(container, jobs) == 40
        assert all(releases(container, j) == 1 for j in jobs)
        rows = queue_rows(postgres_url)
        assert sorted(r for r in rows if r in ours) == sorted(ours)
        assert all(container.ledger.get_job(j).status == Status.PENDING for j in jobs)
    finally:
        container.close()


def crash_after_a_round(postgres_server: PostgresServer, settings: Settings) -> list[UUID]:
    """Release 40 due jobs in one round, then kill the server: the jobs, or none when
    their commit reached disk anyway before the kill (a checkpoint, a buffer written out:
    then the releases stand, each once, and the caller tries again with new jobs)."""
    url = settings.database_url
    assert url is not None
    container = build(settings)
    try:
        jobs = due_jobs(container, 40)
        wal_writer_delay(url, "10s")
        assert one_round(container, jobs) == 40
        written = wal_position(url, "pg_current_wal_insert_lsn")
        flushed = wal_position(url, "pg_current_wal_flush_lsn") >= written
        postgres_server.stop("immediate")
        postgres_server.start()
    finally:
        container.close()
        wal_writer_delay(url, None)
    if not flushed:
        return jobs
    container = build(settings)
    try:
        assert all(releases(container, j) == 1 for j in jobs)
    finally:
        container.close()
    return []


def wal_position(url: str, function: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT {function}() - '0/0'::pg_lsn").fetchone()
        assert row is not None
        return int(row[0])


def wal_writer_delay(url: str, value: str | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        if value is None:
            conn.execute("ALTER SYSTEM RESET wal_writer_delay")
        else:
            conn.execute(f"ALTER SYSTEM SET wal_writer_delay = '{value}'")
        conn.execute("SELECT pg_reload_conf()")
