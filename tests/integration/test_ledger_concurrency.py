"""Several ledger instances on one database: conflicts are re-decided, never lost or doubled."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from ledger.application import JobLedger
from ledger.commands import ClaimJob, DetectStale, EnqueueJob, RecordHeartbeat
from ledger.errors import AttemptSuperseded, LedgerError, NotStale
from ledger.job import Job
from ledger.status import Status
from tests.support.ledgers import make_ledger

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

shared_stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def claimed_jobs(ledger: JobLedger, count: int) -> list[UUID]:
    ids = []
    for n in range(count):
        job_id = ledger.execute(EnqueueJob(customer_id=f"c{n % 3}"), T0).job_id
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
        ids.append(job_id)
    return ids


@shared_stores
def test_a_batch_that_conflicts_is_redecided_without_dropping_the_others(
    store: str, store_url: str | None, tmp_path: Path
) -> None:
    api = make_ledger(store, tmp_path, store_url, stale_threshold=timedelta(seconds=10))
    monitor = make_ledger(store, tmp_path, store_url, stale_threshold=timedelta(seconds=10))
    jobs = claimed_jobs(api, 20)  # api's cache now holds every job at "claimed"
    # Another process declares job 0 stale behind the api's back.
    monitor.execute(DetectStale(job_id=jobs[0], attempt=1, detected_by="m"),
                    T0 + timedelta(seconds=30))
    beats = [RecordHeartbeat(job_id=j, attempt=1, worker_id="w") for j in jobs]
    results = api.execute_batch(beats, T0 + timedelta(seconds=31))
    assert isinstance(results[0], AttemptSuperseded)
    assert all(r.__class__.__name__ == "Outcome" for r in results[1:])
    for job_id in jobs[1:]:
        assert [type(e).__name__ for e in api.history(job_id)].count("HeartbeatRecorded") == 1
    assert [type(e).__name__ for e in api.history(jobs[0])][-3:] == [
        "StaleDetected", "Requeued", "ReportRefused"]
    api.close()
    monitor.close()


@shared_stores
def test_a_refusal_from_a_stale_cache_is_checked_against_the_store(
    store: str, store_url: str | None, tmp_path: Path
) -> None:
    api = make_ledger(store, tmp_path, store_url, stale_threshold=timedelta(seconds=10))
    other = make_ledger(store, tmp_path, store_url, stale_threshold=timedelta(seconds=10))
    (job_id,) = claimed_jobs(api, 1)
    other.execute(DetectStale(job_id=job_id, attempt=1, detected_by="m"),
                  T0 + timedelta(seconds=30))
    other.execute(ClaimJob(job_id=job_id, worker_id="w2"), T0 + timedelta(seconds=31))
    # api's cache still says attempt 1; attempt 2 is real and must be accepted.
    outcome = api.execute(RecordHeartbeat(job_id=job_id, attempt=2, worker_id="w2"),
                          T0 + timedelta(seconds=32))
    assert (outcome.attempt, outcome.status) == (2, "in_progress")
    api.close()
    other.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_heartbeats_racing_stale_detection_are_never_both_applied(
    store: str, store_url: str | None, tmp_path: Path
) -> None:
    """Two threads, two ledger instances: a worker heartbeating while a monitor declares
    the job stale. Each heartbeat is applied once or refused (and recorded); after a
    stale detection no heartbeat of that attempt is applied; nothing is lost."""
    seed = make_ledger(store, tmp_path, store_url)
    jobs = claimed_jobs(seed, 30)
    seed.close()
    worker = make_ledger(store, tmp_path, store_url, stale_threshold=timedelta(seconds=0.001))
    monitor = make_ledger(store, tmp_path, store_url, stale_threshold=timedelta(seconds=0.001))
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def now() -> datetime:
        return datetime.now(UTC)

    def beat() -> None:
        start.wait()
        for _ in range(3):
            for job_id in jobs:
                try:
                    worker.execute(RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w"),
                                   now())
                    outcomes["applied"] += 1
                except AttemptSuperseded:
                    outcomes["refused"] += 1
                except BaseException as error:  # pragma: no cover - reported below
                    errors.append(error)

    def detect() -> None:
        start.wait()
        for job_id in reversed(jobs):
            try:
                monitor.execute(DetectStale(job_id=job_id, attempt=1, detected_by="m"), now())
                outcomes["stale"] += 1
            except NotStale:
                outcomes["not_stale"] += 1
            except LedgerError as error:  # pragma: no cover - reported below
                errors.append(error)

    threads = [threading.Thread(target=beat), threading.Thread(target=detect)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    recorded: Counter[str] = Counter()
    for job_id in jobs:
        history = worker.history(job_id)
        names = [type(e).__name__ for e in history]
        recorded.update(names)
        if "StaleDetected" in names:
            after = names[names.index("StaleDetected"):]
            assert "HeartbeatRecorded" not in after
            assert worker.get_job(job_id).status == Status.PENDING
        else:
            assert worker.get_job(job_id).status == Status.IN_PROGRESS
        versions = [e.originator_version for e in history]
        assert versions == list(range(1, len(history) + 1))
        assert all(isinstance(e, Job.Event) for e in history)
    assert recorded["HeartbeatRecorded"] == outcomes["applied"]
    assert recorded["ReportRefused"] == outcomes["refused"]
    assert recorded["StaleDetected"] == outcomes["stale"]
    assert outcomes["applied"] + outcomes["refused"] == 3 * len(jobs)
    assert outcomes["stale"] + outcomes["not_stale"] == len(jobs)
    assert outcomes["stale"] > 0
    worker.close()
    monitor.close()
