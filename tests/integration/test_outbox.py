"""The local queue's transactional outbox on PostgreSQL (issue 19, ADR 151): an event that
asks for a message commits or rolls back with its queue row, the dispatcher skips what the
outbox wrote and still sends what it did not (a paused queue's jobs, events appended before
the upgrade), so each job's message is in the queue exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import anyio
import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.postgres.backend import postgres_env
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.dispatcher import Dispatcher
from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.commands import EnqueueJob, PauseQueue, ResumeQueue
from ledger.outbox import OUTBOX, OutboxBatch
from ledger.ports.queue_store import DEFAULT_QUEUE, NewMessage
from ledger.ports.transport import Received, Transport
from tests.integration.test_event_recorder import recorder_of

pytestmark = pytest.mark.postgres


@pytest.fixture
def container(postgres_url: str, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url)
    wired = build(replace(settings, retry_base_delay_seconds=0.0))
    yield wired
    wired.close()


def queue_rows(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute(
            "SELECT job_id FROM local_queue_messages ORDER BY seq").fetchall()]  # fmt: skip


def positions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [int(r[0]) for r in conn.execute(
            "SELECT position FROM outbox_positions ORDER BY position").fetchall()]  # fmt: skip


def enqueue(ledger: JobLedger, count: int, queue: str = "default", **kw: object) -> list[UUID]:
    commands = [EnqueueJob(customer_id="acme", queue=queue, payload={"n": n}, **kw)  # type: ignore[arg-type]
                for n in range(count)]  # fmt: skip
    return [r.job_id for r in ledger.execute_batch(commands, utc_now())]  # type: ignore[union-attr]


async def drain(transport: Transport, seconds: float = 0.5) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got += await transport.receive(max_messages=10, wait_seconds=0.1)
    return got


def test_an_enqueue_commits_its_queue_row_without_a_dispatcher(container: Container) -> None:
    url = container.settings.database_url
    assert url is not None
    assert container.ledger.outbox == DEFAULT_QUEUE
    jobs = enqueue(container.ledger, 5)
    later = enqueue(container.ledger, 2, run_at=utc_now() + timedelta(hours=1))
    assert queue_rows(url) == [str(j) for j in jobs]  # the scheduled two: none yet
    assert len(positions(url)) == 5
    assert not set(map(str, later)) & set(queue_rows(url))


def test_a_failed_append_writes_no_queue_row(postgres_url: str) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        build(Settings(database_url=postgres_url)).close()  # migrated
        recorder = recorder_of(ledger)
        job_id = uuid4()
        stored = StoredEvent(originator_id=job_id, originator_version=1, topic="t:E",
                             state=b"{}")  # fmt: skip
        recorder.insert_events([stored])
        row = NewMessage(message_id=str(uuid4()), job_id=str(job_id), attempt=0, body="{}",
                         sent_at=0.0, visible_at=0.0)  # fmt: skip
        batch = OutboxBatch(DEFAULT_QUEUE, [0], [row])
        with pytest.raises(IntegrityError):  # the same version again: a conflict
            recorder.insert_events([stored], **{OUTBOX: batch})
        assert queue_rows(postgres_url) == []
        assert positions(postgres_url) == []
        fresh = StoredEvent(originator_id=job_id, originator_version=2, topic="t:E", state=b"{}")
        (position,) = recorder.insert_events([fresh], **{OUTBOX: batch}) or []
        assert (queue_rows(postgres_url), positions(postgres_url)) == ([str(job_id)], [position])
    finally:
        ledger.close()


def test_across_the_upgrade_and_a_pause_each_message_is_sent_exactly_once(
    container: Container,
) -> None:
    """Jobs enqueued by a process without the outbox (before the upgrade) and jobs of a
    paused queue go through the dispatcher; the outbox's own are skipped by it."""
    url = container.settings.database_url
    assert url is not None
    ledger = container.ledger
    old = JobLedger(postgres_env(url))  # a process of the previous version: no outbox
    transport = build_transport(container.settings, container.backend)
    store = container.backend.open_views()
    dispatcher = Dispatcher(store, ledger, transport, clock=utc_now, owner="t")

    async def main() -> None:
        before = enqueue(old, 3)
        after = enqueue(ledger, 4)
        ledger.control_queue(PauseQueue(queue="emails", actor="t", reason="t"), utc_now())
        paused = enqueue(ledger, 2, queue="emails")
        while await dispatcher.step():
            pass
        assert dispatcher.sent == 3
        assert dispatcher.held == 2
        ledger.control_queue(ResumeQueue(queue="emails", actor="t", reason="t"), utc_now())
        while await dispatcher.step():
            pass
        got = await drain(transport)
        ids = sorted(str(r.message.job_id) for r in got)
        assert ids == sorted(str(j) for j in before + after + paused)
        assert positions(url) == []  # forgotten once passed

    try:
        anyio.run(main)
    finally:
        old.close()
        store.close()
        anyio.run(transport.aclose)
