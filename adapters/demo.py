"""``ledger demo``: the ledger core exercised end to end on the configured store.

The demo drives the real application with a simulated clock, so it shows in a second what
takes minutes in production: a heartbeat-fenced stale recovery, a late report refused, a
job retried until it is dead-lettered, and its redrive.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from rich.console import Console

from adapters.bootstrap import Container, utc_now
from adapters.timeline import event_record, timeline_table
from ledger.commands import (
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    RecordHeartbeat,
    RedriveJob,
)
from ledger.errors import AttemptSuperseded


@dataclass
class DemoClock:
    """The demo's time: starts now, moves only when the demo says so."""

    now: datetime = field(default_factory=utc_now)

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class DemoReport:
    jobs: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    stale_job: str = ""
    refused_report: str = ""
    dead_lettered_job: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


def run_demo(container: Container, console: Console) -> DemoReport:
    ledger = container.ledger
    clock = DemoClock()
    threshold = container.settings.stale_threshold.total_seconds()
    say = console.print
    say(f"[bold]job-ledger demo[/] on {_store(container)}")

    customers = ["acme", "globex", "initech"]
    ids: list[UUID] = []
    for n in range(6):
        outcome = ledger.execute(
            EnqueueJob(customer_id=customers[n % 3], payload={"n": n}, max_attempts=3,
                       idempotency_key=f"demo-{clock.now.timestamp()}-{n}"),
            clock.now,
        )
        ids.append(outcome.job_id)
    again = ledger.execute(
        EnqueueJob(customer_id="acme", payload={"n": 0}, max_attempts=3,
                   idempotency_key=f"demo-{clock.now.timestamp()}-0"),
        clock.now,
    )
    say(f"enqueued {len(ids)} jobs for {', '.join(customers)}; "
        f"re-enqueue with the same idempotency key returned the same job: "
        f"{again.job_id == ids[0] and not again.created}")

    # 1. A worker claims, heartbeats (one batched transaction) and completes.
    claim = ledger.execute(ClaimJob(job_id=ids[0], worker_id="worker-a"), clock.advance(1))
    beats = [RecordHeartbeat(job_id=ids[0], attempt=claim.attempt, worker_id="worker-a")] * 3
    ledger.execute_batch(beats, clock.advance(5))
    ledger.execute(CompleteJob(job_id=ids[0], attempt=claim.attempt, worker_id="worker-a",
                               result={"ok": True}), clock.advance(1))
    say(f"worker-a claimed {_short(ids[0])}, sent 3 heartbeats in one batch, completed it")

    # 2. A worker goes silent; the stale policy requeues; its late report is fenced.
    stale = ledger.execute(ClaimJob(job_id=ids[1], worker_id="worker-b"), clock.advance(1))
    ledger.execute(RecordHeartbeat(job_id=ids[1], attempt=1, worker_id="worker-b"),
                   clock.advance(2))
    clock.advance(threshold + 1)
    ledger.execute(DetectStale(job_id=ids[1], attempt=stale.attempt, detected_by="demo-monitor"),
                   clock.now)
    second = ledger.execute(ClaimJob(job_id=ids[1], worker_id="worker-c"), clock.advance(11))
    ledger.execute(CompleteJob(job_id=ids[1], attempt=second.attempt, worker_id="worker-c"),
                   clock.advance(3))
    refused = ""
    try:
        ledger.execute(CompleteJob(job_id=ids[1], attempt=stale.attempt, worker_id="worker-b"),
                       clock.advance(1))
    except AttemptSuperseded as error:
        refused = str(error)
    say(f"worker-b went silent on {_short(ids[1])}: stale after {threshold:g}s, requeued, "
        f"completed by worker-c as attempt {second.attempt}")
    say(f"worker-b's late report was refused and recorded: [italic]{refused}[/]")

    # 3. A job that keeps failing is dead-lettered, then redriven.
    doomed = ids[2]
    for _ in range(3):
        job = ledger.get_job(doomed)
        if job.not_before:
            clock.now = max(clock.now, job.not_before)
        attempt = ledger.execute(ClaimJob(job_id=doomed, worker_id="worker-a"), clock.advance(1))
        ledger.execute(FailJob(job_id=doomed, attempt=attempt.attempt, worker_id="worker-a",
                               error="ConnectionError: upstream refused"), clock.advance(2))
    say(f"{_short(doomed)} failed 3 times: {ledger.get_job(doomed).status}")
    ledger.execute(RedriveJob(job_id=doomed, actor="demo-operator"), clock.advance(60))
    say(f"redriven by demo-operator: {ledger.get_job(doomed).status} with a fresh budget")

    # 4. The rest are completed by one worker.
    for job_id in ids[3:]:
        got = ledger.execute(ClaimJob(job_id=job_id, worker_id="worker-d"), clock.advance(1))
        ledger.execute(CompleteJob(job_id=job_id, attempt=got.attempt, worker_id="worker-d"),
                       clock.advance(1))

    counts = Counter(str(ledger.get_job(job_id).status) for job_id in ids)
    say("jobs by status: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    events = ledger.history(ids[1])
    console.print(timeline_table(events))
    history = ledger.history(doomed)
    console.print(timeline_table(history))
    say(f"inspect any job with: [bold]ledger jobs show {ids[1]}[/]")
    return DemoReport(
        jobs=len(ids), counts=dict(counts), stale_job=str(ids[1]), refused_report=refused,
        dead_lettered_job=str(doomed), history=[event_record(e) for e in history],
    )


def _short(job_id: UUID) -> str:
    return str(job_id)[:8]


def _store(container: Container) -> str:
    settings = container.settings
    if settings.database_url:
        return "PostgreSQL"
    return f"SQLite at {settings.sqlite_path}"
