"""A batch of new jobs on PostgreSQL (``ledger/new_jobs.py``, issue 19, ADR 185): one
statement for the batch and its outbox rows, no ``StoredEvent`` per job, the events read
back through the normal mapper as ``Job.enqueue`` makes them, and keys that exist in
another process's log answered as before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.postgres.backend import postgres_env
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.commands import EnqueueJob, Outcome
from ledger.job import Job
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
    for name in ("insert_rows", "insert_events"):
        monkeypatch.setattr(recorder, name, counted(calls, name, getattr(recorder, name)))
    now = utc_now()
    commands = [EnqueueJob(customer_id="acme", payload={"n": n, "t": "é\u2028"}, priority=n % 3)
                for n in range(100)]  # fmt: skip
    commands[7] = EnqueueJob(customer_id="acme", payload=7, run_at=now + timedelta(hours=1))
    results = ledger.execute_batch(commands, now)
    assert calls == ["insert_rows"]
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
