"""The audit's invariants for operator controls (ADR 100), on hand-built histories and on
the histories a real ledger writes when jobs are cancelled, delayed, released, requeued."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from adapters.service.audit import step_of
from ledger.audit import Step, audit_history
from ledger.commands import (
    AnyCommand,
    CancelJob,
    ClaimJob,
    DetectStale,
    EnqueueJob,
    Outcome,
    RecordHeartbeat,
    ReleaseJob,
    ReportCancelled,
    RequeueJob,
)
from tests.support.projection_events import T0, decoded, logged, memory_ledger
from tests.unit.test_audit import claim, history, invariants, limits

ENQ: tuple[str, dict[str, object]] = ("Enqueued", {})
LATER: tuple[str, dict[str, object]] = ("Enqueued", {"scheduled": True})
W1 = {"attempt": 1, "worker_id": "w1"}


@pytest.mark.parametrize(("steps", "broken"), [
    ([ENQ, ("Cancelled", {"attempt": 0})], []),
    ([ENQ, claim(1), ("CancelRequested", {"attempt": 1}), ("Cancelled", {"attempt": 1})], []),
    ([ENQ, claim(1), ("Cancelled", {"attempt": 1}), ("Completed", W1)],
     ["completed_after_cancel"]),
    ([LATER, ("Released", {}), claim(1)], []),
    ([ENQ, ("Released", {})], ["released_not_scheduled"]),
    ([LATER, claim(1)], ["lifecycle"]),  # a scheduled job is released before its claim
    ([ENQ, claim(1), ("Completed", W1), ("Cancelled", {"attempt": 1})],
     ["cancel_after_terminal"]),
    ([ENQ, ("Cancelled", {}), ("CancelRequested", {})], ["cancel_after_terminal"]),
    ([ENQ, ("CancelRequested", {})], ["lifecycle"]),
    ([ENQ, claim(1), ("Requeued", {"attempt": 1, "actor": "cli:ann"}), claim(2)], []),
    ([ENQ, claim(1), ("Requeued", {"attempt": 1})], ["claim_not_ended"]),
    ([ENQ, claim(1), ("Failed", W1), ("Requeued", {"attempt": 1, "scheduled": True}),
      ("Released", {}), claim(2)], []),
])
def test_control_invariants(steps: list[tuple[str, dict[str, object]]], broken: list[str]) -> None:
    assert invariants(history(*steps)) == broken


def test_a_real_ledger_controlling_jobs_keeps_every_invariant() -> None:
    ledger = memory_ledger()

    def run(command: AnyCommand, now: datetime = T0) -> Outcome:
        return ledger.execute(command, now)

    pending = run(EnqueueJob(customer_id="a")).job_id
    run(CancelJob(job_id=pending, actor="cli:ann"))
    worked = run(EnqueueJob(customer_id="a")).job_id
    run(ClaimJob(job_id=worked, worker_id="w1"))
    run(CancelJob(job_id=worked, actor="cli:ann"))
    run(RecordHeartbeat(job_id=worked, attempt=1, worker_id="w1"))
    run(ReportCancelled(job_id=worked, attempt=1, worker_id="w1"))
    silent = run(EnqueueJob(customer_id="a")).job_id
    run(ClaimJob(job_id=silent, worker_id="w1"))
    run(CancelJob(job_id=silent, actor="cli:ann"))
    run(DetectStale(job_id=silent, attempt=1, detected_by="m"), T0 + timedelta(hours=1))
    delayed = run(EnqueueJob(customer_id="a", delay_seconds=30)).job_id
    run(ReleaseJob(job_id=delayed), T0 + timedelta(seconds=30))
    stuck = run(EnqueueJob(customer_id="a")).job_id
    run(ClaimJob(job_id=stuck, worker_id="w1"))
    run(RequeueJob(job_id=stuck, actor="cli:ann", reason="stuck"))
    run(ClaimJob(job_id=stuck, worker_id="w2"))
    steps: dict[str, list[Step]] = {}
    for event in decoded(logged(ledger)):
        steps.setdefault(event.originator_id, []).append(step_of(
            event.position, event.originator_version, event.topic.rsplit(".", 1)[-1],
            event.body, event.at,
        ))
    assert len(steps) == 5
    for job_id, job_steps in steps.items():
        violations, _ = audit_history(job_id, job_steps, limits(dispatched=None))
        assert violations == [], (job_id, violations)
