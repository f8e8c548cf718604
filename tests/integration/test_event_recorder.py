"""The one-round-trip event recorder on PostgreSQL (adapters/postgres/event_recorder.py):
what eventsourcing's recorder guaranteed still holds: ids in commit order under
concurrent writers, all-or-nothing batches, NOTIFY for listeners, recovery after the
server restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError, StoredEvent

from adapters.postgres.backend import postgres_env
from adapters.postgres.event_recorder import LedgerEventRecorder
from adapters.service.bootstrap import utc_now
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, Outcome, RecordHeartbeat
from ledger.errors import JobNotFound
from ledger.queue import queue_id
from tests.support.pg import PostgresServer

pytestmark = pytest.mark.postgres


def recorder_of(ledger: JobLedger) -> LedgerEventRecorder:
    recorder = ledger.recorder
    assert isinstance(recorder, LedgerEventRecorder)
    return recorder


def event(version: int, originator: UUID | str | None = None) -> StoredEvent:
    return StoredEvent(
        originator_id=originator or uuid4(), originator_version=version,
        topic="tests:Event", state=b"{}",
    )


def test_the_ledger_on_postgres_appends_through_one_function_call(postgres_url: str) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = recorder_of(ledger)
        job = ledger.execute(EnqueueJob(customer_id="c"), utc_now()).job_id
        ledger.execute(ClaimJob(job_id=job, worker_id="w"), utc_now())
        with psycopg.connect(postgres_url) as conn:
            functions = conn.execute(
                "SELECT count(*) FROM pg_proc WHERE proname = %s",
                (recorder.append_function_name,),
            ).fetchone()
        assert functions == (1,)
        assert [type(e).__name__ for e in ledger.history(job)] == ["Enqueued", "Claimed"]
    finally:
        ledger.close()


def test_a_batch_gets_ascending_ids_and_a_duplicate_version_refuses_all_of_it(
    postgres_url: str,
) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = recorder_of(ledger)
        first = event(1)
        ids = recorder.insert_events([first, event(1), event(1)])
        assert ids is not None
        assert len(ids) == 3
        assert list(ids) == sorted(ids)
        assert recorder.max_notification_id() == ids[-1]

        with pytest.raises(RecordConflictError):
            recorder.insert_events([event(1), event(1, first.originator_id)])
        assert recorder.max_notification_id() == ids[-1]  # nothing of the batch stayed
        assert len(recorder.select_notifications(start=1, limit=100)) == 3
        assert recorder.insert_events([]) == []
    finally:
        ledger.close()


def test_listeners_are_notified_of_an_append(postgres_url: str) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = recorder_of(ledger)
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f'LISTEN "{recorder.channel_name}"')
            recorder.insert_events([event(1)])
            received = list(listener.notifies(timeout=5.0, stop_after=1))
        assert [n.channel for n in received] == [recorder.channel_name]
    finally:
        ledger.close()


def test_a_tailing_reader_never_passes_over_an_id_committed_later(postgres_url: str) -> None:
    """Eight writers append while a reader tails the log by notification id, as the
    projection runner and the dispatcher do: it must see every event. Without the table
    lock, ids commit out of order and the reader skips the late ones."""
    env = {**postgres_env(postgres_url), "POSTGRES_POOL_SIZE": "10"}
    ledger = JobLedger(env)
    writers, each = 8, 150
    try:
        recorder = recorder_of(ledger)
        done = threading.Event()
        seen: list[int] = []

        def write() -> None:
            for _ in range(each):
                recorder.insert_events([event(1), event(1)])

        def tail() -> None:
            position = 0
            while True:
                finished = done.is_set()
                page = recorder.select_notifications(
                    start=position, limit=1000, inclusive_of_start=False
                )
                seen.extend(n.id for n in page)
                if page:
                    position = page[-1].id
                elif finished:
                    return
                else:
                    time.sleep(0.001)

        reader = threading.Thread(target=tail)
        reader.start()
        threads = [threading.Thread(target=write) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        reader.join(30)
        head = recorder.max_notification_id()
        assert head is not None
        all_ids = [n.id for n in recorder.select_notifications(start=1, limit=head + 1)]
        assert len(all_ids) == writers * each * 2
        assert seen == all_ids
    finally:
        ledger.close()


def test_the_ledger_appends_again_after_the_server_restarts(
    postgres_server: PostgresServer, postgres_url: str,
) -> None:
    """The pool does not ping before each use: a connection broken by the restart fails
    once, is discarded, and the append is retried on a new one."""
    if not postgres_server.supports_restart:
        pytest.skip("this PostgreSQL cannot be restarted from the tests")
    env = {**postgres_env(postgres_url), "POSTGRES_POOL_SIZE": "3"}
    ledger = JobLedger(env)
    try:
        for _ in range(3):
            ledger.execute(EnqueueJob(customer_id="before"), utc_now())
        postgres_server.restart("fast")
        after = [ledger.execute(EnqueueJob(customer_id="after"), utc_now()) for _ in range(5)]
        assert all(o.created for o in after)
        assert [type(e).__name__ for e in ledger.history(after[-1].job_id)] == ["Enqueued"]
    finally:
        ledger.close()


def test_a_batch_loads_the_jobs_it_has_never_seen_in_one_query(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker's batch of claims and reports names jobs its process never saw: they are
    read with one query (latest snapshot + later events each), not two per job. The
    per-job reads are made to fail, so a wrong prefetch (which would end in version
    conflicts and per-job retries) fails the test."""
    env = postgres_env(postgres_url)
    writer = JobLedger(env, snapshot_interval=5)
    reader = JobLedger(env, snapshot_interval=5)
    try:
        busy, *idle = [
            writer.execute(EnqueueJob(customer_id="c", idempotency_key=f"k{i}"), utc_now()).job_id
            for i in range(3)
        ]
        attempt = writer.execute(ClaimJob(job_id=busy, worker_id="w1"), utc_now()).attempt
        for _ in range(12):  # snapshots at versions 5 and 10, events after them
            writer.execute(RecordHeartbeat(job_id=busy, attempt=attempt, worker_id="w1"),
                           utc_now())
        missing = uuid4()

        # A claim also reads its queue's aggregate (is it paused or capped? ADR 100): that
        # one read per queue is allowed; any read of one job on its own is not.
        queues = {queue_id("default")}

        def reads_only_queues(select: Any) -> Any:
            def no_single_job_reads(originator_id: UUID, *args: Any, **kwargs: Any) -> Any:
                if originator_id in queues:
                    return select(originator_id, *args, **kwargs)
                raise AssertionError("a job was read on its own")
            return no_single_job_reads

        monkeypatch.setattr(
            reader.recorder, "select_events", reads_only_queues(reader.recorder.select_events)
        )
        assert reader.snapshots is not None
        monkeypatch.setattr(
            reader.snapshots.recorder, "select_events",
            reads_only_queues(reader.snapshots.recorder.select_events),
        )
        results = reader.execute_batch([
            RecordHeartbeat(job_id=busy, attempt=attempt, worker_id="w1"),
            ClaimJob(job_id=idle[0], worker_id="w2"),
            ClaimJob(job_id=idle[1], worker_id="w2"),
            ClaimJob(job_id=missing, worker_id="w2"),
            EnqueueJob(customer_id="c", idempotency_key="k0"),  # the busy job, again
            EnqueueJob(customer_id="c", idempotency_key="new"),
        ], utc_now())
        monkeypatch.undo()

        heartbeat, claim_a, claim_b, not_found, again, new = results
        assert isinstance(heartbeat, Outcome)
        assert heartbeat.version == 15  # Enqueued, Claimed, 12 + 1 heartbeats
        assert isinstance(claim_a, Outcome)
        assert (claim_a.status, claim_a.attempt) == ("in_progress", 1)
        assert isinstance(claim_b, Outcome)
        assert isinstance(not_found, JobNotFound)
        assert isinstance(again, Outcome)
        assert (again.job_id, again.created) == (busy, False)
        assert isinstance(new, Outcome)
        assert new.created
        stored = writer.get_job(busy)
        assert (stored.version, stored.status, stored.attempt) == (15, "in_progress", attempt)
        assert writer.get_job(idle[0]).worker_id == "w2"
    finally:
        writer.close()
        reader.close()


def test_after_a_conflict_only_the_jobs_that_changed_are_read_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch on cached jobs conflicts because another process appended to one of them:
    the stored versions are checked in one query and only that job is read again (the
    batch used to re-read all of its jobs)."""
    env = postgres_env(postgres_url)
    api, monitor = JobLedger(env, stale_threshold=timedelta(seconds=1)), JobLedger(env)
    try:
        jobs = [api.execute(EnqueueJob(customer_id="c"), utc_now()).job_id for _ in range(6)]
        for job_id in jobs:
            api.execute(ClaimJob(job_id=job_id, worker_id="w"), utc_now())
        changed = jobs[2]
        monitor.execute(RecordHeartbeat(job_id=changed, attempt=1, worker_id="w"), utc_now())

        recorder = recorder_of(api)
        read: list[set[object]] = []
        select_streams, select_events = recorder.select_streams, recorder.select_events

        def streams(ids: list[UUID], snapshots_table: str | None) -> dict[UUID, list[StoredEvent]]:
            read.append(set(ids))
            found: dict[UUID, list[StoredEvent]] = select_streams(ids, snapshots_table)
            return found

        def events(originator_id: UUID, **kwargs: Any) -> Sequence[StoredEvent]:
            read.append({originator_id})
            stored: Sequence[StoredEvent] = select_events(originator_id, **kwargs)
            return stored

        monkeypatch.setattr(recorder, "select_streams", streams)
        monkeypatch.setattr(recorder, "select_events", events)
        results = api.execute_batch(
            [RecordHeartbeat(job_id=j, attempt=1, worker_id="w") for j in jobs], utc_now()
        )
        monkeypatch.undo()

        assert all(isinstance(r, Outcome) for r in results)
        assert read == [{changed}]  # the others were kept from the cache
        stored = {j: monitor.get_job(j).version for j in jobs}
        assert stored[changed] == 4  # Enqueued, Claimed, the monitor's beat, the api's beat
        assert all(v == 3 for j, v in stored.items() if j != changed)
    finally:
        api.close()
        monitor.close()
