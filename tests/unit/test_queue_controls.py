"""Queues: pause, resume and the cap on running jobs (ledger/queue.py), decided by the
ledger in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ledger.application import JobLedger
from ledger.commands import (
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    PauseQueue,
    ResumeQueue,
    SetQueueLimit,
)
from ledger.errors import InvalidCommand, QueueAtCapacity, QueuePaused
from ledger.queue import Queue, check_claim, queue_id

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("paused", "max_running", "running", "refusal"),
    [
        (False, None, 0, None),
        (False, None, 10_000, None),
        (False, 5, 4, None),
        (False, 5, 5, QueueAtCapacity),
        (False, 1, 7, QueueAtCapacity),
        (True, None, 0, QueuePaused),
        (True, 5, 0, QueuePaused),
        (True, 5, 5, QueuePaused),
    ],
)
def test_check_claim_table(
    paused: bool, max_running: int | None, running: int, refusal: type[Exception] | None
) -> None:
    if refusal is None:
        check_claim(paused, max_running, running, "emails")
    else:
        with pytest.raises(refusal):
            check_claim(paused, max_running, running, "emails")


def test_operator_decisions_append_only_changes() -> None:
    queue = Queue.open("emails", NOW)
    assert queue.id == queue_id("emails")
    assert queue.pause("cli:ana", "deploy", NOW) is True
    assert queue.pause("cli:bob", None, NOW) is False  # paused already: nothing appended
    assert (queue.paused, queue.paused_by, queue.paused_reason) == (True, "cli:ana", "deploy")
    assert queue.resume("cli:ana", None, NOW) is True
    assert queue.resume("cli:ana", None, NOW) is False
    assert queue.set_limit(5, "cli:ana", None, NOW) is True
    assert queue.set_limit(5, "cli:ana", None, NOW) is False
    names = [type(e).__name__ for e in queue.collect_events()]
    assert names == ["Opened", "Paused", "Resumed", "LimitSet"]


def test_slots_free_only_the_attempt_that_holds_one() -> None:
    queue = Queue.open("emails", NOW)
    job = UUID(int=1)
    queue.take_slot(job, 1, NOW)
    assert queue.free_slot(job, 2, "Completed", NOW) is False  # not the holding attempt
    assert queue.free_slot(job, 1, "Completed", NOW) is True
    assert queue.free_slot(job, 1, "Completed", NOW) is False
    assert queue.running == {}


def _ledger() -> JobLedger:
    return JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, retry_policy=None)


def _enqueue(ledger: JobLedger, n: int, queue: str = "emails") -> list[UUID]:
    return [
        ledger.execute(EnqueueJob(customer_id="acme", queue=queue), NOW).job_id
        for _ in range(n)
    ]


def test_a_cap_of_two_refuses_the_third_claim_until_one_ends() -> None:
    ledger = _ledger()
    ledger.control_queue(SetQueueLimit(queue="emails", actor="cli:ana", max_running=2), NOW)
    a, b, c = _enqueue(ledger, 3)
    results = ledger.execute_batch([ClaimJob(job_id=j, worker_id="w") for j in (a, b, c)], NOW)
    assert [type(r).__name__ for r in results] == ["Outcome", "Outcome", "QueueAtCapacity"]
    ledger.execute(CompleteJob(job_id=a, attempt=1, worker_id="w"), NOW)
    assert ledger.execute(ClaimJob(job_id=c, worker_id="w"), NOW).status == "in_progress"
    queue = ledger.get_queue("emails")
    assert queue is not None
    assert sorted(queue.running) == sorted([str(b), str(c)])
    # other queues are not capped
    (other,) = _enqueue(ledger, 1, queue="default")
    assert ledger.execute(ClaimJob(job_id=other, worker_id="w"), NOW).status == "in_progress"


def test_every_end_of_an_attempt_frees_its_slot() -> None:
    ledger = _ledger()
    ledger.control_queue(SetQueueLimit(queue="emails", actor="cli:ana", max_running=1), NOW)
    (job,) = _enqueue(ledger, 1)
    ledger.execute(ClaimJob(job_id=job, worker_id="w"), NOW)
    ledger.execute(FailJob(job_id=job, attempt=1, worker_id="w", error="boom"), NOW)
    later = NOW + timedelta(hours=2)  # past the retry's backoff
    ledger.execute(ClaimJob(job_id=job, worker_id="w"), later)
    stale = DetectStale(job_id=job, attempt=2, detected_by="monitor")
    ledger.execute(stale, later + timedelta(hours=1))
    queue = ledger.get_queue("emails")
    assert queue is not None
    assert queue.running == {}
    whys = [e.why for e in ledger.events.get(queue.id) if isinstance(e, Queue.SlotFreed)]
    assert whys == ["Failed", "StaleDetected"]


def test_a_paused_queue_refuses_claims_and_resumes() -> None:
    ledger = _ledger()
    (job,) = _enqueue(ledger, 1)
    outcome = ledger.control_queue(PauseQueue(queue="emails", actor="cli:ana", reason="x"), NOW)
    assert (outcome.paused, outcome.changed) == (True, True)
    with pytest.raises(QueuePaused):
        ledger.execute(ClaimJob(job_id=job, worker_id="w"), NOW)
    assert ledger.get_job(job).status == "pending"
    ledger.control_queue(ResumeQueue(queue="emails", actor="cli:ana"), NOW)
    assert ledger.execute(ClaimJob(job_id=job, worker_id="w"), NOW).status == "in_progress"


def test_a_queue_command_is_validated() -> None:
    with pytest.raises(InvalidCommand):
        _ledger().control_queue(SetQueueLimit(queue="emails", actor="a", max_running=0), NOW)
