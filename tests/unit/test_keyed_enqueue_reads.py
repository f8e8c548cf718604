"""A keyed enqueue of a new key reads nothing (ADR 165): the job is taken as new in the
batch's first round; a key that exists makes the append conflict, and the next round
reads the job and answers as before (the same job, or ``IdempotencyConflict``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.errors import IdempotencyConflict

NOW = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)


@pytest.fixture
def counted() -> tuple[JobLedger, list[int]]:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    reads = [0]
    select: Callable[..., Any] = ledger.recorder.select_events

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        return select(*args, **kwargs)

    ledger.recorder.select_events = counting  # type: ignore[method-assign]
    return ledger, reads


def test_a_new_key_is_enqueued_without_a_read(counted: tuple[JobLedger, list[int]]) -> None:
    ledger, reads = counted
    outcome = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k1"), NOW)
    assert outcome.created
    assert reads[0] == 0


def test_a_key_that_exists_is_read_after_the_conflict_and_answered_as_before(
    counted: tuple[JobLedger, list[int]],
) -> None:
    ledger, reads = counted
    first = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k1", payload=1), NOW)
    ledger.forget()  # as another process, which never held the job
    again = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k1", payload=1), NOW)
    assert (again.job_id, again.created) == (first.job_id, False)
    assert reads[0] >= 1
    assert [type(e).__name__ for e in ledger.history(first.job_id)] == ["Enqueued"]
    ledger.forget()
    with pytest.raises(IdempotencyConflict):
        ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k1", payload=2), NOW)


def test_a_held_job_answers_from_the_cache(counted: tuple[JobLedger, list[int]]) -> None:
    ledger, reads = counted
    first = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k2"), NOW)
    again = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k2"), NOW)
    assert (again.job_id, again.created, reads[0]) == (first.job_id, False, 0)
