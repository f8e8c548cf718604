"""Operator controls on one job (ADR 100): the pure rules, table by table, and the job's
decisions through the ledger (cancel, delay and release, priority, operator requeue)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.domain import Snapshot

from ledger.application import JobLedger
from ledger.commands import (
    CancelJob,
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    RecordHeartbeat,
    ReleaseJob,
    ReportCancelled,
    RequeueJob,
)
from ledger.errors import (
    AttemptSuperseded,
    IllegalTransition,
    InvalidCommand,
    JobNotDue,
)
from ledger.job import Job
from ledger.policies.controls import (
    CancelStep,
    cancel_step,
    check_release,
    check_requeue,
    claim_releases,
    scheduled_until,
    status_after_requeue,
)
from ledger.status import Status
from tests.support.projection_events import memory_ledger

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
JOB = uuid4()
S = Status


@pytest.mark.parametrize(("status", "requested", "step"), [
    (S.PENDING, False, CancelStep.CANCEL),
    (S.SCHEDULED, False, CancelStep.CANCEL),
    (S.IN_PROGRESS, False, CancelStep.REQUEST),
    (S.IN_PROGRESS, True, CancelStep.NOTHING),
    (S.COMPLETED, False, IllegalTransition),
    (S.DEAD_LETTERED, False, IllegalTransition),
    (S.CANCELLED, False, IllegalTransition),
])
def test_cancel_rule(status: Status, requested: bool, step: object) -> None:
    if step is IllegalTransition:
        with pytest.raises(IllegalTransition):
            cancel_step(JOB, status, requested)
    else:
        assert cancel_step(JOB, status, requested) == step


@pytest.mark.parametrize(("run_at", "delay", "due"), [
    (None, None, None),
    (T0 + timedelta(hours=1), None, T0 + timedelta(hours=1)),
    (T0, None, None),  # not after now: due at once
    (T0 - timedelta(days=1), None, None),
    (None, 30.0, T0 + timedelta(seconds=30)),
    (None, 0.0, None),
    (T0 + timedelta(hours=1), 30.0, InvalidCommand),
])
def test_delay_rule(run_at: datetime | None, delay: float | None, due: object) -> None:
    if due is InvalidCommand:
        with pytest.raises(InvalidCommand):
            scheduled_until(run_at, delay, T0)
    else:
        assert scheduled_until(run_at, delay, T0) == due


LATER = T0 + timedelta(minutes=5)


@pytest.mark.parametrize(("status", "not_before", "now", "answer"), [
    (S.PENDING, None, T0, False),
    (S.PENDING, LATER, T0, JobNotDue),
    (S.SCHEDULED, LATER, T0, JobNotDue),
    (S.SCHEDULED, LATER, LATER, True),
    (S.IN_PROGRESS, None, T0, IllegalTransition),
    (S.CANCELLED, None, T0, IllegalTransition),
])
def test_claim_rule(
    status: Status, not_before: datetime | None, now: datetime, answer: object
) -> None:
    if isinstance(answer, type):
        with pytest.raises(answer):
            claim_releases(JOB, status, not_before, now)
    else:
        assert claim_releases(JOB, status, not_before, now) is answer


@pytest.mark.parametrize(("status", "now", "error"), [
    (S.SCHEDULED, LATER, None),
    (S.SCHEDULED, T0, JobNotDue),
    (S.PENDING, LATER, IllegalTransition),
    (S.CANCELLED, LATER, IllegalTransition),
])
def test_release_rule(status: Status, now: datetime, error: type[Exception] | None) -> None:
    if error is None:
        check_release(JOB, status, LATER, now)
    else:
        with pytest.raises(error):
            check_release(JOB, status, LATER, now)


@pytest.mark.parametrize(("status", "allowed"), [
    (S.SCHEDULED, True), (S.IN_PROGRESS, True), (S.PENDING, False), (S.COMPLETED, False),
    (S.DEAD_LETTERED, False), (S.CANCELLED, False),
])
def test_requeue_rule(status: Status, allowed: bool) -> None:
    if allowed:
        check_requeue(JOB, status)
    else:
        with pytest.raises(IllegalTransition):
            check_requeue(JOB, status)


def test_a_requeue_with_a_delay_is_scheduled() -> None:
    assert status_after_requeue(None) == S.PENDING
    assert status_after_requeue(LATER) == S.SCHEDULED


# -- through the ledger ----------------------------------------------------------------


def names(ledger: JobLedger, job_id: UUID) -> list[str]:
    return [type(e).__name__ for e in ledger.history(job_id)]


def running(ledger: JobLedger) -> UUID:
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w1"), T0)
    return job_id


def test_cancelling_a_pending_job_ends_it_at_once_and_a_claim_is_refused() -> None:
    ledger = memory_ledger()
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id
    outcome = ledger.execute(CancelJob(job_id=job_id, actor="cli:ann", reason="typo"), T0)
    assert outcome.status == "cancelled"
    event = ledger.history(job_id)[-1]
    assert isinstance(event, Job.Cancelled)
    assert (event.by, event.actor, event.reason, event.attempt) == ("operator", "cli:ann",
                                                                    "typo", 0)
    with pytest.raises(IllegalTransition):
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w1"), T0)
    with pytest.raises(IllegalTransition):  # a cancel after a terminal status is refused
        ledger.execute(CancelJob(job_id=job_id, actor="cli:ann"), T0)


def test_cancelling_a_running_job_asks_its_worker_who_ends_it() -> None:
    ledger = memory_ledger()
    job_id = running(ledger)
    outcome = ledger.execute(CancelJob(job_id=job_id, actor="api:key:k1:staff"), T0)
    assert (outcome.status, outcome.cancel_requested) == ("in_progress", True)
    beat = ledger.execute(RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w1"), T0)
    assert beat.cancel_requested  # the heartbeat's answer tells the worker
    again = ledger.execute(CancelJob(job_id=job_id, actor="cli:bob"), T0)  # a repeat: nothing
    assert again.version == beat.version
    done = ledger.execute(ReportCancelled(job_id=job_id, attempt=1, worker_id="w1"), T0)
    assert done.status == "cancelled"
    assert names(ledger, job_id)[-3:] == ["CancelRequested", "HeartbeatRecorded", "Cancelled"]
    last = ledger.history(job_id)[-1]
    assert isinstance(last, Job.Cancelled)
    assert (last.by, last.actor) == ("worker", "api:key:k1:staff")
    with pytest.raises(AttemptSuperseded):  # refused and recorded, as fencing does
        ledger.execute(CompleteJob(job_id=job_id, attempt=1, worker_id="w1"), T0)
    assert names(ledger, job_id)[-1] == "ReportRefused"
    assert ledger.get_job(job_id).status == Status.CANCELLED


def test_a_report_cancelled_without_a_request_is_refused() -> None:
    ledger = memory_ledger()
    job_id = running(ledger)
    with pytest.raises(IllegalTransition):
        ledger.execute(ReportCancelled(job_id=job_id, attempt=1, worker_id="w1"), T0)


def test_a_completion_before_the_worker_stops_still_applies() -> None:
    ledger = memory_ledger()
    job_id = running(ledger)
    ledger.execute(CancelJob(job_id=job_id, actor="cli:ann"), T0)
    outcome = ledger.execute(CompleteJob(job_id=job_id, attempt=1, worker_id="w1"), T0)
    assert outcome.status == "completed"


def test_a_failure_after_a_cancel_request_cancels_instead_of_retrying() -> None:
    ledger = memory_ledger()
    job_id = running(ledger)
    ledger.execute(CancelJob(job_id=job_id, actor="cli:ann"), T0)
    outcome = ledger.execute(FailJob(job_id=job_id, attempt=1, worker_id="w1", error="x"), T0)
    assert outcome.status == "cancelled"
    assert names(ledger, job_id)[-2:] == ["Failed", "Cancelled"]


def test_a_stale_attempt_with_a_cancel_request_is_cancelled_never_requeued() -> None:
    ledger = memory_ledger()
    job_id = running(ledger)
    ledger.execute(CancelJob(job_id=job_id, actor="cli:ann", reason="stop"), T0)
    later = T0 + ledger.stale_threshold + timedelta(seconds=1)
    outcome = ledger.execute(DetectStale(job_id=job_id, attempt=1, detected_by="m"), later)
    assert outcome.status == "cancelled"
    assert names(ledger, job_id)[-2:] == ["StaleDetected", "Cancelled"]
    last = ledger.history(job_id)[-1]
    assert isinstance(last, Job.Cancelled)
    assert (last.by, last.actor, last.reason) == ("stale", "cli:ann", "stop")


def test_a_delayed_enqueue_is_scheduled_until_released() -> None:
    ledger = memory_ledger()
    outcome = ledger.execute(EnqueueJob(customer_id="acme", delay_seconds=60, priority=7), T0)
    job = ledger.get_job(outcome.job_id)
    assert (outcome.status, job.not_before, job.priority) == (
        "scheduled", T0 + timedelta(seconds=60), 7,
    )
    with pytest.raises(JobNotDue):
        ledger.execute(ReleaseJob(job_id=job.id), T0 + timedelta(seconds=59))
    with pytest.raises(JobNotDue):
        ledger.execute(ClaimJob(job_id=job.id, worker_id="w1"), T0)
    released = ledger.execute(ReleaseJob(job_id=job.id), T0 + timedelta(seconds=60))
    assert released.status == "pending"
    with pytest.raises(IllegalTransition):  # released only from scheduled
        ledger.execute(ReleaseJob(job_id=job.id), T0 + timedelta(seconds=61))


def test_run_at_and_delay_seconds_are_exclusive_and_priority_is_bounded() -> None:
    ledger = memory_ledger()
    with pytest.raises(InvalidCommand):
        ledger.execute(EnqueueJob(customer_id="a", run_at=T0, delay_seconds=1.0), T0)
    with pytest.raises(InvalidCommand):
        ledger.execute(EnqueueJob(customer_id="a", priority=101), T0)
    with pytest.raises(msgspec.ValidationError):  # a boundary refuses a naive time
        msgspec.json.decode(b'{"type":"enqueue","customer_id":"a","run_at":"2026-01-01T00:00"}',
                            type=EnqueueJob)


def test_an_operator_requeues_a_stuck_attempt_and_its_late_reports_are_refused() -> None:
    ledger = memory_ledger()
    job_id = running(ledger)
    outcome = ledger.execute(
        RequeueJob(job_id=job_id, actor="cli:ann", reason="stuck", action_id="a1"), T0
    )
    assert outcome.status == "pending"
    event = ledger.history(job_id)[-1]
    assert isinstance(event, Job.Requeued)
    assert (event.actor, event.reason, event.action_id) == ("cli:ann", "stuck", "a1")
    with pytest.raises(AttemptSuperseded):
        ledger.execute(RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w1"), T0)
    with pytest.raises(IllegalTransition):  # a pending job is requeued already
        ledger.execute(RequeueJob(job_id=job_id, actor="cli:ann"), T0)


def without(ledger: JobLedger, event: object, *names: str) -> object:
    """The event as stored before ADR 100: without ``names`` in its stored state."""
    stored = ledger.mapper.to_stored_event(event)  # type: ignore[arg-type]
    state = json.loads(stored.state)
    for name in names:
        state.pop(name)
    return ledger.mapper.to_domain_event(replace(stored, state=json.dumps(state).encode()))


def test_events_stored_before_the_controls_still_load() -> None:
    ledger = memory_ledger()
    job_id = running(ledger)
    ledger.execute(FailJob(job_id=job_id, attempt=1, worker_id="w1", error="x"), T0)
    enqueued, _, _, requeued = ledger.history(job_id)
    old_enqueued = without(ledger, enqueued, "priority", "run_at")
    old_requeued = without(ledger, requeued, "actor", "action_id")
    assert isinstance(old_requeued, Job.Requeued)
    assert (old_requeued.actor, old_requeued.action_id) == (None, None)
    job = old_enqueued.mutate(None)  # type: ignore[attr-defined]
    assert (job.priority, job.status, job.not_before, job.cancel_requested) == (
        0, Status.PENDING, None, False,
    )
    snapshot = Snapshot.take(job)
    state = json.loads(ledger.mapper.to_stored_event(snapshot).state)
    for name in ("priority", "cancel_requested", "cancel_actor", "cancel_reason"):
        state["state"].pop(name, None)
    stored = replace(ledger.mapper.to_stored_event(snapshot), state=json.dumps(state).encode())
    restored = ledger.mapper.to_domain_event(stored).mutate(None)  # type: ignore[attr-defined]
    assert (restored.priority, restored.cancel_requested, restored.cancel_actor) == (
        0, False, None,
    )
