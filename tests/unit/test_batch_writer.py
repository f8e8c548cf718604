"""Group commit: concurrent callers share transactions and each gets its own answer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from adapters.service.batching import BatchWriter
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from ledger.errors import JobNotFound, UnknownAttempt

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_concurrent_heartbeats_share_batches_and_get_their_own_results() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    jobs = []
    for _ in range(20):
        job_id = ledger.execute(EnqueueJob(customer_id="c"), T0).job_id
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
        jobs.append(job_id)
    results: dict[int, object] = {}
    start = threading.Barrier(40)
    submitted = threading.Semaphore(0)

    calls: list[int] = []

    def slow_clock() -> datetime:
        # The first batch waits until every caller has submitted, so the rest queue up.
        if not calls:
            for _ in range(40):
                submitted.acquire(timeout=10)
        calls.append(1)
        return T0

    def send(n: int) -> None:
        start.wait()
        if n == 39:
            command = RecordHeartbeat(job_id=uuid4(), attempt=1, worker_id="w")
        elif n == 38:
            command = RecordHeartbeat(job_id=jobs[0], attempt=9, worker_id="w")
        else:
            command = RecordHeartbeat(job_id=jobs[n % 20], attempt=1, worker_id="w")
        future = writer.submit(command)
        submitted.release()
        results[n] = future.result(timeout=30)

    with BatchWriter(ledger, clock=slow_clock, max_batch=64) as writer:
        threads = [threading.Thread(target=send, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert isinstance(results[39], JobNotFound)
    assert isinstance(results[38], UnknownAttempt)
    assert sum(type(r).__name__ == "Outcome" for r in results.values()) == 38
    assert writer.commands == 40
    assert writer.batches <= 3  # callers shared transactions
    assert sum(ledger.get_job(j).heartbeats for j in jobs) == 38


def test_submit_after_close_is_refused() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    writer = BatchWriter(ledger, clock=lambda: T0).start()
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(EnqueueJob(customer_id="c"))
