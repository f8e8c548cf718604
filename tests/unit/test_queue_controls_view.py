"""The ``queue_controls`` view's fold, in memory: paused (by whom, why, since), the cap and
the running count say what the ``Queue`` aggregate says, whatever the operators and the
workers did, at any page boundaries."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import JobLedger
from ledger.commands import (
    AnyQueueCommand,
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    FailJob,
    PauseQueue,
    ResumeQueue,
    SetQueueLimit,
)
from ledger.errors import LedgerError
from ledger.queue import queue_id
from projections.memory import MemoryView
from projections.queue_controls import QueueControlsView
from tests.support.projection_events import T0, decoded, logged, memory_ledger

QUEUE = "reports"


def row_of(ledger: JobLedger, page: int = 500) -> dict[str, object]:
    events = decoded(logged(ledger))
    view = MemoryView(QueueControlsView())
    for start in range(0, len(events), page):
        view.feed(events[start:start + page])
    rows = view.dicts("queue_controls")
    assert len(rows) == 1
    return rows[0]


def test_the_row_shows_who_paused_why_and_since_the_cap_and_the_running_jobs() -> None:
    ledger = memory_ledger()
    ids = [ledger.execute(EnqueueJob(customer_id="acme", queue=QUEUE), T0).job_id
           for _ in range(3)]
    paused_at = T0 + timedelta(seconds=5)
    ledger.control_queue(SetQueueLimit(queue=QUEUE, actor="cli:ann", max_running=2), T0)
    for job_id in ids[:2]:
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w1"), T0)
    ledger.control_queue(
        PauseQueue(queue=QUEUE, actor="api:key:k1:staff", reason="db migration"), paused_at
    )
    row = row_of(ledger)
    assert row == {
        "queue_id": str(queue_id(QUEUE)), "queue": QUEUE, "paused": 1,
        "paused_by": "api:key:k1:staff", "paused_reason": "db migration",
        "paused_at": paused_at, "max_running": 2, "running": 2,
    }
    ledger.execute(CompleteJob(job_id=ids[0], attempt=1, worker_id="w1"), paused_at)
    ledger.control_queue(ResumeQueue(queue=QUEUE, actor="cli:ann"), paused_at)
    ledger.control_queue(SetQueueLimit(queue=QUEUE, actor="cli:ann", max_running=None),
                         paused_at)
    assert row_of(ledger, page=1) | {"queue_id": None} == {
        "queue_id": None, "queue": QUEUE, "paused": 0, "paused_by": None,
        "paused_reason": None, "paused_at": None, "max_running": None, "running": 1,
    }


ACTIONS = st.sampled_from(["pause", "resume", "limit", "claim", "complete", "fail"])
STEPS = st.lists(
    st.tuples(ACTIONS, st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=40
)


def run(ledger: JobLedger, ids: list[UUID], step: tuple[str, int, int], at: int) -> None:
    """One operator's or worker's step; a refused one appends nothing."""
    action, index, n = step
    now = T0 + timedelta(seconds=at)
    job_id = ids[index]
    job = ledger.get_job(job_id)
    control: AnyQueueCommand | None = None
    if action == "pause":
        control = PauseQueue(queue=QUEUE, actor=f"cli:u{n}", reason=f"why {at}")
    elif action == "resume":
        control = ResumeQueue(queue=QUEUE, actor="cli:u0")
    elif action == "limit":
        control = SetQueueLimit(queue=QUEUE, actor="cli:u0", max_running=n if n < 3 else None)
    if control is not None:
        ledger.control_queue(control, now)
        return
    try:
        if action == "claim":
            ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), now)
        elif action == "complete":
            ledger.execute(CompleteJob(job_id=job_id, attempt=job.attempt, worker_id="w"), now)
        else:
            ledger.execute(FailJob(job_id=job_id, attempt=job.attempt, worker_id="w",
                                   error="boom"), now)
    except LedgerError:
        pass  # refused (paused, full, not running): the model decided, nothing appended


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, page=st.integers(1, 7))
def test_the_view_equals_the_queue_aggregate_whatever_happened(
    steps: list[tuple[str, int, int]], page: int
) -> None:
    ledger = memory_ledger()
    ids = [ledger.execute(EnqueueJob(customer_id="acme", queue=QUEUE, max_attempts=5), T0)
           .job_id for _ in range(4)]
    ledger.control_queue(SetQueueLimit(queue=QUEUE, actor="cli:u0", max_running=2), T0)
    for at, step in enumerate(steps, start=1):
        run(ledger, ids, step, at)
    queue = ledger.get_queue(QUEUE)
    assert queue is not None
    row = row_of(ledger, page)
    assert row["paused"] == int(queue.paused)
    assert row["paused_by"] == queue.paused_by
    assert row["paused_reason"] == queue.paused_reason
    assert row["paused_at"] == queue.paused_at
    assert row["max_running"] == queue.max_running
    assert row["running"] == len(queue.running)
