"""The outbox's rows for a batch (ADR 151): whether a queue is paused is asked once per
queue of the batch, not once per event (the application's answer reads the store)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from uuid import UUID, uuid4

from ledger.job import Job
from ledger.outbox import outbox_batch

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def enqueued(queue: str) -> Job:
    return Job.enqueue(
        job_id=uuid4(), customer_id="acme", queue=queue, payload=None, max_attempts=3,
        idempotency_key=None, now=NOW,
    )


def test_a_batch_asks_once_per_queue_whether_it_is_paused() -> None:
    jobs = [enqueued("emails") for _ in range(100)] + [enqueued("reports") for _ in range(5)]
    events = [job.pending_events[0] for job in jobs]
    asked: Counter[str] = Counter()

    def paused(name: str) -> bool:
        asked[name] += 1
        return name == "reports"

    batch = outbox_batch(
        events, {job.id: job for job in jobs}, queue="jobs", now=NOW, paused=paused,
        new_id=uuid4,
    )
    assert asked == {"emails": 1, "reports": 1}
    assert batch is not None
    assert batch.indexes == list(range(100))  # the paused queue's jobs stay with the dispatcher
    assert {UUID(row.job_id) for row in batch.rows} == {job.id for job in jobs[:100]}
