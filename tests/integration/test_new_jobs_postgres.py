"""A batch of new jobs on PostgreSQL (``ledger/new_jobs.py``, issue 19, ADR 185): one
statement for the batch and its outbox rows, no ``StoredEvent`` per job, the events read
back through the normal mapper as ``Job.enqueue`` makes them, and keys that exist in
another process's log answered as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.postgres.backend import postgres_env
from adapters.postgres.migrate import migrate
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.commands import EnqueueJob, Outcome, PauseQueue
from ledger.job import Job
from ledger.new_jobs import NewJob, new_job_outbox
from ledger.outbox import outbox_columns
from ledger.ports.queue_store import DEFAULT_QUEUE
from tests.integration.test_event_recorder import recorder_of

pytestmark = pytest.mark.postgres


@pytest.fixture
def container(postgres_url: str, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url)
    wired = build(replace(settings, retry_base_delay_seconds=0.0))
    yield wired
    wired.close()


def counted(calls: list[str], name: str, method: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return method(*args, **kwargs)

    return call


def test_a_batch_is_one_statement_with_its_queue_rows(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = container.ledger
    recorder = recorder_of(ledger)
    calls: list[str] = []
    for name in ("append_new_jobs", "insert_rows", "insert_events"):
        monkeypatch.setattr(recorder, name, counted(calls, name, getattr(recorder, name)))
    now = utc_now()
    commands = [EnqueueJob(customer_id="acme", payload={"n": n, "t": "é\u2028"}, priority=n % 3)
                for n in range(100)]  # fmt: skip
    commands[7] = EnqueueJob(customer_id="acme", payload=7, run_at=now + timedelta(hours=1))
    results = ledger.execute_batch(commands, now)
    assert calls == ["append_new_jobs"]  # the statement for new jobs (ADR 212)
    ids = [r.job_id for r in results if isinstance(r, Outcome)]
    assert len(ids) == 100
    url = container.settings.database_url
    assert url is not None
    with psycopg.connect(url) as conn:
        queued = [str(r[0]) for r in conn.execute(
            "SELECT job_id FROM local_queue_messages ORDER BY seq").fetchall()]  # fmt: skip
        (covered,) = conn.execute("SELECT count(*) FROM outbox_positions").fetchone() or (0,)
    assert queued == [str(j) for j in ids if j != ids[7]]
    assert covered == 99
    ledger.forget()
    for command, job_id in zip(commands, ids, strict=True):
        (event,) = ledger.history(job_id)
        assert isinstance(event, Job.Enqueued)
        expected = Job.enqueue(
            job_id=job_id, customer_id="acme", queue="default", payload=command.payload,
            max_attempts=command.max_attempts, idempotency_key=None, now=now,
            priority=command.priority, run_at=command.run_at,
        ).pending_events[0]
        assert vars(event) == vars(expected)


def test_keys_another_process_wrote_are_answered_as_before(postgres_url: str) -> None:
    first, second = (JobLedger(postgres_env(postgres_url)) for _ in range(2))
    try:
        keyed = [EnqueueJob(customer_id="acme", payload=n, idempotency_key=f"k{n}")
                 for n in range(50)]  # fmt: skip
        made: list[Any] = first.execute_batch(keyed, utc_now())
        again: list[Any] = second.execute_batch(keyed, utc_now())  # guessed new: conflicts
        assert [r.job_id for r in again] == [r.job_id for r in made]
        assert [r.created for r in made] == [True] * 50
        assert [r.created for r in again] == [False] * 50
        with psycopg.connect(postgres_url) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM jobledger_events WHERE originator_version = 1"
            ).fetchone() or (0,)
        assert count == 50
    finally:
        first.close()
        second.close()


QUEUE_ROWS = (
    "SELECT message_id, job_id, attempt, body, sent_at, visible_at, job_queue, priority, "
    "queue_name, receive_count, receipt, dead_at FROM local_queue_messages ORDER BY seq"
)


def stored(url: str) -> tuple[list[tuple[Any, ...]], list[int], list[int]]:
    """The queue rows, the outbox's positions and the log's notification ids."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(QUEUE_ROWS).fetchall()
        covered = [r[0] for r in conn.execute("SELECT position FROM outbox_positions")]
        logged = [r[0] for r in conn.execute(
            "SELECT notification_id FROM jobledger_events ORDER BY notification_id")]  # fmt: skip
    return rows, covered, logged


@pytest.mark.parametrize("count", [1, 12])
def test_new_jobs_get_the_general_outboxs_rows(
    container: Container, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """The statement for new jobs (one job: scalars; a batch: arrays) writes the rows the
    general outbox append would: same job, attempt, body, times, queue and priority
    (``new_job_outbox``, the rule the unit tests hold to ``outbox_batch``), a fresh
    message id each, and the positions of the events it covers."""
    ledger = recorder_of(container.ledger)
    general: list[str] = []
    monkeypatch.setattr(ledger, "insert_rows", counted(general, "rows", ledger.insert_rows))
    url = container.settings.database_url
    assert url is not None
    container.ledger.control_queue(PauseQueue(queue="held", actor="t"), utc_now())
    now = utc_now()
    commands = [EnqueueJob(customer_id="acme\u2028", queue=("emails", "default", "held")[n % 3],
                           priority=n % 4 - 1, payload={"n": n}) for n in range(count)]  # fmt: skip
    if count > 1:
        commands[1] = EnqueueJob(customer_id="acme", payload=1, run_at=now + timedelta(hours=1))
    _, _, before = stored(url)
    results = container.ledger.execute_batch(commands, now)
    assert general == []  # no general append
    rows, covered, logged = stored(url)
    appended = [n for n in logged if n not in before]
    assert len(appended) == count
    news = [NewJob(c, r.job_id, now, c.run_at) for c, r in zip(commands, results, strict=True)
            if isinstance(r, Outcome)]  # fmt: skip
    expected = new_job_outbox(news, queue=DEFAULT_QUEUE, now=now, paused=lambda q: q == "held",
                              new_id=uuid.uuid4)  # fmt: skip
    assert expected is not None
    columns = outbox_columns(expected)
    want = [(str(job), attempt, body, sent, visible, queue, priority, DEFAULT_QUEUE, 0, None, None)
            for job, attempt, body, sent, visible, queue, priority
            in zip(*columns[1:], strict=True)]  # fmt: skip
    assert [(str(r[1]), *r[2:]) for r in rows] == want
    assert len({r[0] for r in rows}) == len(rows)  # a message id each
    assert sorted(covered) == [appended[i] for i in expected.indexes]
    ledger_jobs = [container.ledger.get_job(r.job_id) for r in results if isinstance(r, Outcome)]
    assert [j.status for j in ledger_jobs] == [r.status for r in results if isinstance(r, Outcome)]


@pytest.mark.parametrize("count", [1, 5])
def test_without_the_outbox_new_jobs_write_their_events_alone(
    postgres_url: str, count: int
) -> None:
    ledger = JobLedger(postgres_env(postgres_url))  # no local queue: SQS's enqueue
    try:
        migrate(postgres_url)
        results = ledger.execute_batch(
            [EnqueueJob(customer_id="acme", payload=n) for n in range(count)], utc_now()
        )
        assert ledger._new_jobs.appends == 1
        rows, covered, logged = stored(postgres_url)
        assert (rows, covered, len(logged)) == ([], [], count)
        ledger.forget()
        assert [ledger.get_job(r.job_id).payload for r in results if isinstance(r, Outcome)] \
            == list(range(count))
    finally:
        ledger.close()


def test_one_keyed_job_another_process_wrote_is_answered_as_before(
    postgres_url: str,
) -> None:
    first, second = (JobLedger(postgres_env(postgres_url)) for _ in range(2))
    try:
        keyed = EnqueueJob(customer_id="acme", payload=1, idempotency_key="k")
        made = first.execute(keyed, utc_now())
        again = second.execute(keyed, utc_now())  # guessed new: the one-job append conflicts
        assert (made.created, again.created, again.job_id) == (True, False, made.job_id)
        assert (first._new_jobs.appends, second._new_jobs.appends) == (1, 0)
        with psycopg.connect(postgres_url) as conn:
            assert conn.execute("SELECT count(*) FROM jobledger_events").fetchone() == (1,)
    finally:
        first.close()
        second.close()
