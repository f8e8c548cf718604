"""``ledger audit`` checks the queue controls (issue 14, ADR 100) on real stores: a log
the model made (a queue paused, resumed and capped, its jobs claimed, refused and
completed, with the Queue aggregate's events) audits clean; a claim
written straight into the log while the queue is paused, or beyond its cap (the model's
checks bypassed), is named by ``claimed_while_paused`` / ``cap_exceeded``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.service.audit import run_audit
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from ledger.commands import (
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    PauseQueue,
    ResumeQueue,
    SetQueueLimit,
)
from ledger.errors import QueueAtCapacity, QueuePaused
from ledger.job import Job

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def container(store: str, store_url: str | None, tmp_path: Path) -> Iterator[Container]:
    wired = build(Settings(ledger_data_dir=tmp_path / "data", database_url=store_url))
    yield wired
    wired.close()


def enqueue(container: Container, queue: str) -> UUID:
    job_id: UUID = container.ledger.execute(
        EnqueueJob(customer_id="acme", queue=queue, payload=None), utc_now()
    ).job_id
    return job_id


def claim_bypassing_the_queue(container: Container, job_id: UUID) -> None:
    """A Claimed appended to the job alone, as a buggy writer would."""
    job = container.ledger.get_job(job_id)
    job.trigger_event(Job.Claimed, timestamp=utc_now(), attempt=job.attempt + 1,
                      worker_id="rogue", worker_time=None)
    container.ledger.save(job)


def audit(container: Container) -> list[str]:
    report = run_audit(container.backend.open_views, [], now=utc_now,
                       alert_grace=timedelta(minutes=5), check_dispatch=False)
    return sorted(v.invariant for v in report.violations)


@stores
def test_a_log_the_model_made_with_queue_controls_audits_clean(container: Container) -> None:
    ledger = container.ledger
    ledger.control_queue(SetQueueLimit(queue="reports", actor="cli:ops", max_running=1),
                         utc_now())
    first, second = enqueue(container, "reports"), enqueue(container, "reports")
    claim = ledger.execute(ClaimJob(job_id=first, worker_id="w1"), utc_now())
    with pytest.raises(QueueAtCapacity):
        ledger.execute(ClaimJob(job_id=second, worker_id="w2"), utc_now())
    ledger.execute(CompleteJob(job_id=first, attempt=claim.attempt, worker_id="w1"), utc_now())
    ledger.control_queue(PauseQueue(queue="reports", actor="cli:ops"), utc_now())
    with pytest.raises(QueuePaused):
        ledger.execute(ClaimJob(job_id=second, worker_id="w2"), utc_now())
    ledger.control_queue(ResumeQueue(queue="reports", actor="cli:ops"), utc_now())
    ledger.execute(ClaimJob(job_id=second, worker_id="w2"), utc_now())
    assert audit(container) == []


@stores
def test_a_claim_while_paused_fails_the_audit(container: Container) -> None:
    job_id = enqueue(container, "emails")
    container.ledger.control_queue(PauseQueue(queue="emails", actor="cli:ops"), utc_now())
    claim_bypassing_the_queue(container, job_id)
    assert audit(container) == ["claimed_while_paused"]


@stores
def test_a_claim_beyond_the_cap_fails_the_audit(container: Container) -> None:
    ledger = container.ledger
    ledger.control_queue(SetQueueLimit(queue="reports", actor="cli:ops", max_running=1),
                         utc_now())
    first, second = enqueue(container, "reports"), enqueue(container, "reports")
    ledger.execute(ClaimJob(job_id=first, worker_id="w1"), utc_now())
    claim_bypassing_the_queue(container, second)
    assert audit(container) == ["cap_exceeded"]
