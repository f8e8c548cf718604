"""The ledger behaves the same on the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from ledger.application import JobLedger
from ledger.commands import (
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    RecordHeartbeat,
    RedriveJob,
)
from ledger.errors import (
    AttemptSuperseded,
    IdempotencyConflict,
    IllegalTransition,
    InvalidCommand,
    JobNotFound,
    UnknownAttempt,
)
from ledger.job import Job
from ledger.status import Status
from tests.support.ledgers import make_ledger
from tests.support.log import recorded_head

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ledger(store: str, store_url: str | None, tmp_path: Path) -> Iterator[JobLedger]:
    app = make_ledger(store, tmp_path, store_url, stale_threshold=timedelta(seconds=60))
    yield app
    app.close()


def head(ledger: JobLedger) -> int:
    return recorded_head(ledger.recorder)


def types(ledger: JobLedger, job_id: UUID) -> list[str]:
    return [type(e).__name__ for e in ledger.history(job_id)]


def enqueue(ledger: JobLedger, **fields: object) -> UUID:
    command = EnqueueJob(customer_id="acme", payload={"n": 1}, **fields)  # type: ignore[arg-type]
    return ledger.execute(command, T0).job_id


def test_enqueue_is_idempotent_per_customer_and_key(ledger: JobLedger) -> None:
    first = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k"), T0)
    again = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k"), T0)
    other = ledger.execute(EnqueueJob(customer_id="globex", idempotency_key="k"), T0)
    assert first.created
    assert (again.job_id, again.created) == (first.job_id, False)
    assert other.job_id != first.job_id
    before = head(ledger)
    with pytest.raises(IdempotencyConflict):
        ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k", payload=2), T0)
    assert head(ledger) == before


def test_lifecycle_round_trips_through_the_store(ledger: JobLedger) -> None:
    job_id = enqueue(ledger, queue="emails", max_attempts=2)
    worker_time = T0 - timedelta(seconds=2)
    claim = ledger.execute(ClaimJob(job_id=job_id, worker_id="w1", worker_time=worker_time),
                           T0 + timedelta(seconds=1))
    assert (claim.attempt, claim.status) == (1, "in_progress")
    ledger.execute(RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w1"),
                   T0 + timedelta(seconds=2))
    done = ledger.execute(
        CompleteJob(job_id=job_id, attempt=1, worker_id="w1", result={"rows": 3}),
        T0 + timedelta(seconds=3),
    )
    assert done.status == "completed"
    ledger.forget()
    job = ledger.get_job(job_id)
    assert (job.status, job.queue, job.result, job.attempt) == (
        Status.COMPLETED, "emails", {"rows": 3}, 1)
    events = ledger.history(job_id)
    assert types(ledger, job_id) == ["Enqueued", "Claimed", "HeartbeatRecorded", "Completed"]
    assert [e.originator_version for e in events] == [1, 2, 3, 4]
    claimed = events[1]
    assert isinstance(claimed, Job.Claimed)
    assert claimed.worker_time == worker_time
    assert claimed.timestamp == T0 + timedelta(seconds=1)


def test_superseded_report_is_refused_and_recorded(ledger: JobLedger) -> None:
    job_id = enqueue(ledger)
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w1"), T0)
    ledger.execute(DetectStale(job_id=job_id, attempt=1, detected_by="m"),
                   T0 + timedelta(minutes=5))
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w2"), T0 + timedelta(minutes=6))
    with pytest.raises(AttemptSuperseded):
        ledger.execute(CompleteJob(job_id=job_id, attempt=1, worker_id="w1"),
                       T0 + timedelta(minutes=7))
    assert types(ledger, job_id)[-1] == "ReportRefused"
    assert ledger.get_job(job_id).status == Status.IN_PROGRESS
    before = head(ledger)
    with pytest.raises(UnknownAttempt):  # never opened: refused, nothing appended
        ledger.execute(RecordHeartbeat(job_id=job_id, attempt=7, worker_id="w2"), T0)
    assert head(ledger) == before


def test_bad_input_appends_nothing(ledger: JobLedger) -> None:
    job_id = enqueue(ledger)
    before = head(ledger)
    with pytest.raises(JobNotFound):
        ledger.execute(ClaimJob(job_id=uuid4(), worker_id="w1"), T0)
    with pytest.raises(InvalidCommand):
        ledger.execute(ClaimJob(job_id=job_id, worker_id=""), T0)
    with pytest.raises(InvalidCommand):
        ledger.execute(EnqueueJob(customer_id="acme", max_attempts=0), T0)
    with pytest.raises(IllegalTransition):
        ledger.execute(RedriveJob(job_id=job_id, actor="ops"), T0)
    assert head(ledger) == before


def test_failures_retry_then_dead_letter_then_redrive(ledger: JobLedger) -> None:
    job_id = enqueue(ledger, max_attempts=2)
    for attempt in (1, 2):
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
        ledger.execute(FailJob(job_id=job_id, attempt=attempt, worker_id="w", error="boom"), T0)
    assert ledger.get_job(job_id).status == Status.DEAD_LETTERED
    ledger.execute(RedriveJob(job_id=job_id, actor="ops"), T0)
    again = ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
    assert again.attempt == 3
    assert types(ledger, job_id) == [
        "Enqueued", "Claimed", "Failed", "Requeued", "Claimed", "Failed", "DeadLettered",
        "Redriven", "Claimed",
    ]


def test_batch_appends_in_one_go_with_a_result_per_command(ledger: JobLedger) -> None:
    jobs = [enqueue(ledger) for _ in range(5)]
    for job_id in jobs:
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
    before = head(ledger)
    commands = [RecordHeartbeat(job_id=j, attempt=1, worker_id="w") for j in jobs]
    commands.insert(2, RecordHeartbeat(job_id=uuid4(), attempt=1, worker_id="w"))
    commands.append(RecordHeartbeat(job_id=jobs[0], attempt=1, worker_id="w"))
    results = ledger.execute_batch(commands, T0 + timedelta(seconds=1))
    assert isinstance(results[2], JobNotFound)
    assert [type(r).__name__ for r in results].count("Outcome") == 6
    assert head(ledger) == before + 6
    assert ledger.get_job(jobs[0]).heartbeats == 2


def test_snapshots_keep_a_long_running_job_cheap_to_load(
    store: str, store_url: str | None, tmp_path: Path
) -> None:
    ledger = make_ledger(store, tmp_path, store_url, snapshot_interval=50)
    job_id = enqueue(ledger)
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
    beats = [RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w")] * 25
    for n in range(6):
        ledger.execute_batch(beats, T0 + timedelta(seconds=n))
    assert ledger.snapshots is not None
    snapshots = list(ledger.snapshots.get(job_id, desc=True, limit=1))
    assert snapshots
    # A batch that crosses a multiple of 50 snapshots the job as saved: v152 here.
    assert snapshots[0].originator_version == 152
    loaded = ledger.get_job(job_id)
    replayed: Job | None = None
    for event in ledger.history(job_id):
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert loaded.__dict__ == replayed.__dict__
    assert loaded.heartbeats == 150
    ledger.close()


def test_a_claimed_jobs_payload_is_answered_from_the_cache(ledger: JobLedger) -> None:
    """A worker reads the payload right after its claim: no second trip to the store."""
    job_id = enqueue(ledger)
    other = uuid4()
    ledger.forget()
    assert ledger.held_payload(job_id) == (False, None)
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
    assert ledger.held_payload(job_id) == (True, {"n": 1})
    assert ledger.held_payload(other) == (False, None)
    assert ledger.payload_of(job_id) == {"n": 1}
