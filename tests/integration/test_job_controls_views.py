"""Operator controls through the real ledger and projection runner, on SQLite and
PostgreSQL: cancel a pending job, cancel a running one (requested, then ended by its
worker's report), a silent cancelled attempt ended by the stale policy, a delayed enqueue
scheduled then released; the views show it and the audit passes (ADR 100)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.service.audit import run_audit
from ledger.commands import (
    CancelJob,
    ClaimJob,
    DetectStale,
    EnqueueJob,
    RecordHeartbeat,
    ReleaseJob,
    ReportCancelled,
)
from ledger.errors import AttemptSuperseded
from projections.queries.health_metrics import HealthMetricsQueries
from projections.queries.job_status import JobStatusQueries
from projections.queries.queue_history import QueueHistoryQueries
from projections.registry import VIEWS
from projections.runner import Runner
from tests.support.projection_env import Backend
from tests.support.projection_events import T0


def test_cancel_delay_and_release_show_in_the_views_and_audit_clean(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    later = T0 + timedelta(seconds=1)
    pending = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id
    ledger.execute(CancelJob(job_id=pending, actor="cli:ann", reason="not needed"), later)

    running = ledger.execute(EnqueueJob(customer_id="acme", priority=50), T0).job_id
    ledger.execute(ClaimJob(job_id=running, worker_id="w1"), T0)
    asked = ledger.execute(CancelJob(job_id=running, actor="api:key:k1:staff"), later)
    assert (asked.status, asked.cancel_requested) == ("in_progress", True)
    beat = ledger.execute(RecordHeartbeat(job_id=running, attempt=1, worker_id="w1"), later)
    assert beat.cancel_requested
    ledger.execute(ReportCancelled(job_id=running, attempt=1, worker_id="w1"), later)
    with pytest.raises(AttemptSuperseded):
        ledger.execute(RecordHeartbeat(job_id=running, attempt=1, worker_id="w1"), later)

    silent = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id
    ledger.execute(ClaimJob(job_id=silent, worker_id="w2"), T0)
    ledger.execute(CancelJob(job_id=silent, actor="cli:bob"), later)
    stale_at = T0 + ledger.stale_threshold + timedelta(seconds=5)
    ledger.execute(DetectStale(job_id=silent, attempt=1, detected_by="monitor"), stale_at)

    delayed = ledger.execute(EnqueueJob(customer_id="acme", delay_seconds=60), T0).job_id
    still = ledger.execute(EnqueueJob(customer_id="acme", delay_seconds=3600), T0).job_id
    store = backend.store()
    runner = Runner(store, list(VIEWS.values()), page_size=7)
    runner.acquire()
    runner.catch_up()
    jobs = JobStatusQueries(store)
    row = jobs.get(delayed)
    assert row is not None
    assert (row.status, row.not_before) == ("scheduled", T0 + timedelta(seconds=60))
    ledger.execute(ReleaseJob(job_id=delayed), T0 + timedelta(seconds=60))
    runner.catch_up()

    rows = {job_id: jobs.get(job_id) for job_id in (pending, running, silent, delayed, still)}
    assert {j: r.status for j, r in rows.items() if r} == {
        pending: "cancelled", running: "cancelled", silent: "cancelled", delayed: "pending",
        still: "scheduled",
    }
    worked = rows[running]
    assert worked is not None
    assert (worked.priority, worked.cancel_requested) == (50, 1)
    history = [(a.action, a.actor, a.reason) for a in QueueHistoryQueries(store).for_job(running)]
    assert ("cancel_requested", "api:key:k1:staff", None) in history
    assert history[-2:] == [("cancelled", "api:key:k1:staff", None),
                            ("report_refused", "w1", "attempt cancelled")]
    by = [a.detail for a in QueueHistoryQueries(store).for_job(silent) if a.action == "cancelled"]
    assert by == [{"by": "stale", "action_id": None}]
    assert [(a.action, a.actor, a.reason) for a in QueueHistoryQueries(store).for_job(pending)
            ][-1] == ("cancelled", "cli:ann", "not needed")
    health = HealthMetricsQueries(store).snapshot(
        stale_at, stale_threshold=ledger.stale_threshold, active_window=timedelta(minutes=5)
    )
    (queue,) = health.queues
    assert (queue.jobs_cancelled, queue.jobs_scheduled, queue.jobs_pending) == (3, 1, 1)

    report = run_audit(backend.store, list(VIEWS.values()), now=lambda: stale_at,
                       alert_grace=timedelta(minutes=5), check_dispatch=False)
    assert report.violations == []
    assert report.statuses == {"cancelled": 3, "pending": 1, "scheduled": 1}
    assert all(check.equal for check in report.views), report.views
