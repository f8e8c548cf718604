"""The job page's story from events alone: heartbeats folded into runs, attempts as lanes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.http.console.story import heartbeat_run, story
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, FailJob, RecordHeartbeat
from ledger.job import Job


def test_a_run_of_heartbeats_is_one_row_saying_how_often() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    t0 = datetime(2026, 12, 4, 10, 1, tzinfo=UTC)
    (made,) = ledger.execute_batch([EnqueueJob(customer_id="acme")], t0)
    assert not isinstance(made, Exception)
    job_id = made.job_id
    ledger.execute_batch([ClaimJob(job_id=job_id, worker_id="w")], t0)
    for i in range(42):
        ledger.execute_batch([RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w")],
                             t0 + timedelta(seconds=30 * i))
    ledger.execute_batch([FailJob(job_id=job_id, attempt=1, worker_id="w", error="boom")],
                         t0 + timedelta(minutes=21))
    events: list[Job.Event] = ledger.history(job_id)
    told = story(events)
    kinds = [row.kind for row in told.rows]
    assert kinds[:4] == ["Enqueued", "Claimed", "HeartbeatRecorded", "Failed"]
    assert told.rows[2].summary == "42 heartbeats 10:01:00-10:21:30, every 30 s"
    assert told.rows[2].last_version == 44
    (lane,) = told.lanes
    assert lane.heartbeats == 42
    assert lane.outcome == "failed"
    assert lane.left == 0.0
    assert 99 <= lane.width <= 100


def test_one_heartbeat_says_so() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    t0 = datetime(2026, 12, 4, 10, 1, tzinfo=UTC)
    (made,) = ledger.execute_batch([EnqueueJob(customer_id="acme")], t0)
    assert not isinstance(made, Exception)
    ledger.execute_batch([ClaimJob(job_id=made.job_id, worker_id="w")], t0)
    ledger.execute_batch([RecordHeartbeat(job_id=made.job_id, attempt=1, worker_id="w")], t0)
    beat = ledger.history(made.job_id)[-1]
    assert heartbeat_run(beat, beat, 1) == "1 heartbeat 10:01:00"
