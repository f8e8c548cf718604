"""Two processes (two ledgers on one PostgreSQL) claim and end jobs of one capped queue.
Each lends itself the queue as it last saved it without reading the store; whenever the
other process wrote to the queue since, the decision is still the stored queue's: a
claim is not refused on a full queue that was freed meanwhile, an end frees the slot the
other process took, a claim on a queue paused meanwhile is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from ledger.application import JobLedger
from ledger.commands import (
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    Outcome,
    PauseQueue,
    SetQueueLimit,
)
from ledger.errors import QueuePaused
from tests.support.ledgers import make_ledger

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
QUEUE = "emails"

pytestmark = pytest.mark.postgres


@pytest.fixture
def pair(postgres_url: str, tmp_path: Path) -> Iterator[tuple[JobLedger, JobLedger]]:
    one = make_ledger("postgres", tmp_path, postgres_url)
    two = make_ledger("postgres", tmp_path, postgres_url)
    yield one, two
    one.close()
    two.close()


def jobs(ledger: JobLedger, count: int, cap: int) -> list[UUID]:
    ledger.control_queue(SetQueueLimit(queue=QUEUE, actor="cli:ana", max_running=cap), T0)
    return [ledger.execute(EnqueueJob(customer_id="acme", queue=QUEUE), T0).job_id
            for _ in range(count)]


def claim(ledger: JobLedger, job_id: UUID) -> Outcome:
    (result,) = ledger.execute_batch([ClaimJob(job_id=job_id, worker_id="w")], T0)
    assert isinstance(result, Outcome), result
    return result


def test_a_claim_is_not_refused_on_a_full_queue_the_other_process_freed(
    pair: tuple[JobLedger, JobLedger],
) -> None:
    one, two = pair
    first, second = jobs(one, 2, cap=1)
    claim(two, first)  # two holds the queue full (1 of 1)
    one.execute(CompleteJob(job_id=first, attempt=1, worker_id="w"), T0)  # one frees it
    assert claim(two, second).status == "in_progress"
    queue = one.get_queue(QUEUE)
    assert queue is not None
    assert queue.running == {str(second): 1}


def test_an_end_frees_the_slot_the_other_process_took(
    pair: tuple[JobLedger, JobLedger],
) -> None:
    one, two = pair
    first, second = jobs(one, 2, cap=5)
    claim(two, first)  # two holds the queue with first's slot
    claim(one, second)  # one takes second's slot
    two.execute(CompleteJob(job_id=second, attempt=1, worker_id="w"), T0)
    queue = one.get_queue(QUEUE)
    assert queue is not None
    assert queue.running == {str(first): 1}  # second's slot freed, none leaked


def test_a_claim_on_a_queue_the_other_process_paused_is_refused(
    pair: tuple[JobLedger, JobLedger],
) -> None:
    one, two = pair
    first, second = jobs(one, 2, cap=5)
    claim(two, first)
    one.control_queue(PauseQueue(queue=QUEUE, actor="cli:ana", reason="deploy"), T0)
    (result,) = two.execute_batch([ClaimJob(job_id=second, worker_id="w")], T0)
    assert isinstance(result, QueuePaused)
    assert one.get_job(second).status == "pending"
