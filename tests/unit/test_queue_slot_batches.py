"""The claims of one batch take their slots in one ``SlotsTaken`` (one queue version per
batch), the cap still holds at every log position, and a log written with the older
per-claim ``SlotTaken`` events folds (the aggregate, the ``queue_controls`` view) and
audits exactly as the same history written with ``SlotsTaken``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.service.audit import feed_job, feed_queue
from ledger.application import JobLedger
from ledger.audit import JobAudit
from ledger.commands import (
    AnyCommand,
    AnyQueueCommand,
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    FailJob,
    PauseQueue,
    ResumeQueue,
    SetQueueLimit,
)
from ledger.errors import LedgerError, QueueAtCapacity
from ledger.policies.retry import RetryPolicy
from ledger.queue import Queue
from ledger.queue_audit import QueueAudit
from projections.events import JobBody, QueueBody
from projections.memory import MemoryView
from projections.queue_controls import QueueControlsView
from tests.support.projection_events import T0, decoded, logged

QUEUE = "reports"


def ledger_of() -> JobLedger:
    """A memory ledger whose job ids are the same in every run."""
    ids = (UUID(int=n) for n in itertools.count(1))
    return JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                     retry_policy=RetryPolicy(0, 0), draw=lambda: 0.5,
                     new_id=lambda: next(ids))


def queue_events(ledger: JobLedger) -> list[Queue.Event]:
    queue = ledger.get_queue(QUEUE)
    assert queue is not None
    return [e for e in ledger.events.get(queue.id) if isinstance(e, Queue.Event)]


def enqueued(ledger: JobLedger, count: int, cap: int | None) -> list[UUID]:
    ids = [ledger.execute(EnqueueJob(customer_id="acme", queue=QUEUE, max_attempts=9), T0)
           .job_id for _ in range(count)]
    ledger.control_queue(SetQueueLimit(queue=QUEUE, actor="cli:u0", max_running=cap), T0)
    return ids


def test_a_batch_of_claims_takes_its_slots_in_one_event_and_one_version() -> None:
    ledger = ledger_of()
    ids = enqueued(ledger, 5, cap=3)
    before = len(queue_events(ledger))
    results = ledger.execute_batch([ClaimJob(job_id=j, worker_id="w") for j in ids], T0)
    assert [type(r).__name__ for r in results] == ["Outcome"] * 3 + ["QueueAtCapacity"] * 2
    assert isinstance(results[3], QueueAtCapacity)
    (taken,) = queue_events(ledger)[before:]
    assert isinstance(taken, Queue.SlotsTaken)
    assert taken.slots == {str(j): 1 for j in ids[:3]}
    queue = ledger.get_queue(QUEUE)
    assert queue is not None
    assert queue.running == taken.slots


def test_an_attempt_claimed_and_ended_in_one_batch_is_taken_before_it_is_freed() -> None:
    ledger = ledger_of()
    a, b = enqueued(ledger, 2, cap=5)
    before = len(queue_events(ledger))
    ledger.execute_batch([ClaimJob(job_id=a, worker_id="w"), ClaimJob(job_id=b, worker_id="w"),
                          CompleteJob(job_id=a, attempt=1, worker_id="w")], T0)
    events = queue_events(ledger)[before:]
    assert [type(e).__name__ for e in events] == ["SlotsTaken", "SlotFreed"]
    queue = ledger.get_queue(QUEUE)
    assert queue is not None
    assert queue.running == {str(b): 1}


def old_take_slots(queue: Queue, slots: dict[str, int], now: datetime) -> None:
    """How claims recorded their slots before ``SlotsTaken``: one event per claim."""
    for job_id, attempt in slots.items():
        queue.trigger_event(Queue.SlotTaken, timestamp=now, job_id=UUID(job_id),
                            attempt=attempt)


def history(ledger: JobLedger) -> None:
    """Claims in batches, ends, a pause, a raised cap: every way a slot moves."""
    ids = enqueued(ledger, 8, cap=3)
    claim = [ClaimJob(job_id=j, worker_id="w") for j in ids]
    steps: list[Sequence[AnyCommand] | AnyQueueCommand] = [
        claim[:5],
        [CompleteJob(job_id=ids[0], attempt=1, worker_id="w"),
         FailJob(job_id=ids[1], attempt=1, worker_id="w", error="boom"), *claim[5:]],
        PauseQueue(queue=QUEUE, actor="cli:u0", reason="deploy"),
        claim[1:2],
        ResumeQueue(queue=QUEUE, actor="cli:u0"),
        SetQueueLimit(queue=QUEUE, actor="cli:u0", max_running=6),
        [*claim[1:], CompleteJob(job_id=ids[2], attempt=1, worker_id="w")],
    ]
    for at, step in enumerate(steps, start=1):
        now = T0 + timedelta(seconds=at)
        if isinstance(step, PauseQueue | ResumeQueue | SetQueueLimit):
            ledger.control_queue(step, now)
        else:
            ledger.execute_batch(step, now)


def folded(ledger: JobLedger) -> tuple[dict[str, object], list[str], dict[str, int]]:
    """The queue_controls row, the audit's violations and the most running per queue."""
    events = decoded(logged(ledger))
    view = MemoryView(QueueControlsView())
    view.feed(events)
    audits: dict[str, JobAudit] = {}
    queues = QueueAudit()
    for event in events:
        if isinstance(event.body, QueueBody):
            feed_queue(queues, event)
        elif isinstance(event.body, JobBody):
            feed_job(audits, queues, event, None)
    (row,) = view.dicts("queue_controls")
    violations = [v.invariant for v in queues.violations]
    violations += [v.invariant for a in audits.values() for v in a.violations]
    return row, violations, {q.name: q.most for q in queues.queues.values()}


@pytest.fixture
def old_log(monkeypatch: pytest.MonkeyPatch) -> JobLedger:
    ledger = ledger_of()
    with monkeypatch.context() as patched:
        patched.setattr(Queue, "take_slots", old_take_slots)
        history(ledger)
    return ledger


def test_an_old_log_of_per_claim_slot_events_folds_and_audits_the_same(
    old_log: JobLedger,
) -> None:
    new_log = ledger_of()
    history(new_log)
    old_kinds = {type(e).__name__ for e in queue_events(old_log)}
    new_kinds = {type(e).__name__ for e in queue_events(new_log)}
    assert "SlotTaken" in old_kinds
    assert "SlotsTaken" not in old_kinds
    assert "SlotTaken" not in new_kinds
    assert "SlotsTaken" in new_kinds
    old_queue, new_queue = old_log.get_queue(QUEUE), new_log.get_queue(QUEUE)
    assert old_queue is not None
    assert new_queue is not None
    assert old_queue.running == new_queue.running
    assert len(old_queue.running) == 5
    assert (old_queue.paused, old_queue.max_running) == (new_queue.paused, new_queue.max_running)
    old_row, old_violations, old_most = folded(old_log)
    assert (old_row, old_violations, old_most) == folded(new_log)
    assert old_row["running"] == 5
    assert old_violations == []
    assert old_most == {QUEUE: 6}


def test_an_old_log_goes_on_with_batch_slot_events(old_log: JobLedger) -> None:
    """A ledger upgraded over an old log: its next claims record ``SlotsTaken`` and the
    cap counts the slots of both kinds."""
    job = old_log.execute(EnqueueJob(customer_id="acme", queue=QUEUE), T0)
    old_log.control_queue(SetQueueLimit(queue=QUEUE, actor="cli:u0", max_running=5), T0)
    refused = old_log.execute_batch([ClaimJob(job_id=job.job_id, worker_id="w")], T0)
    assert isinstance(refused[0], QueueAtCapacity)  # 5 of 5 held by old SlotTaken events
    old_log.control_queue(SetQueueLimit(queue=QUEUE, actor="cli:u0", max_running=6), T0)
    (claimed,) = old_log.execute_batch([ClaimJob(job_id=job.job_id, worker_id="w")], T0)
    assert not isinstance(claimed, LedgerError)
    assert isinstance(queue_events(old_log)[-1], Queue.SlotsTaken)
    row, violations, most = folded(old_log)
    assert row["running"] == 6
    assert violations == []
    assert most == {QUEUE: 6}


COMMANDS = st.lists(st.tuples(st.sampled_from(["claim", "complete", "fail"]),
                              st.integers(0, 5)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(COMMANDS, min_size=1, max_size=8), cap=st.integers(1, 4))
def test_batches_of_claims_and_ends_never_exceed_the_cap_and_the_view_agrees(
    batches: list[list[tuple[str, int]]], cap: int
) -> None:
    ledger = ledger_of()
    ids = enqueued(ledger, 6, cap=cap)
    for at, batch in enumerate(batches, start=1):
        commands: list[AnyCommand] = []
        for kind, index in batch:
            job = ledger.get_job(ids[index])
            if kind == "claim":
                commands.append(ClaimJob(job_id=job.id, worker_id="w"))
            elif kind == "complete":
                commands.append(CompleteJob(job_id=job.id, attempt=job.attempt, worker_id="w"))
            else:
                commands.append(FailJob(job_id=job.id, attempt=job.attempt, worker_id="w",
                                        error="boom"))
        ledger.execute_batch(commands, T0 + timedelta(seconds=at))
    row, violations, most = folded(ledger)
    queue = ledger.get_queue(QUEUE)
    assert queue is not None
    assert violations == []
    assert most[QUEUE] <= cap
    assert row["running"] == len(queue.running)
    running = {str(j) for j in ids if ledger.get_job(j).status == "in_progress"}
    assert set(queue.running) == running


def test_a_slot_freed_and_taken_again_in_one_batch_is_freed_first_in_the_log() -> None:
    """[claim X (refused: full), complete Y, claim X]: the log has Y's ``Completed``
    before X's ``Claimed``, so no position shows two jobs in progress on a cap of one."""
    ledger = ledger_of()
    x, y = enqueued(ledger, 2, cap=1)
    ledger.execute(ClaimJob(job_id=y, worker_id="w"), T0)
    results = ledger.execute_batch([ClaimJob(job_id=x, worker_id="w"),
                                    CompleteJob(job_id=y, attempt=1, worker_id="w"),
                                    ClaimJob(job_id=x, worker_id="w")], T0)
    assert [type(r).__name__ for r in results] == ["QueueAtCapacity", "Outcome", "Outcome"]
    row, violations, most = folded(ledger)
    assert violations == []
    assert most == {QUEUE: 1}
    assert row["running"] == 1
