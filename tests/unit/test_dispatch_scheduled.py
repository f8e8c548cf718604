"""What the dispatcher sends for scheduled jobs and priorities (ADR 100): a job enqueued
for later, or retried after a backoff, sends nothing until the scheduler's ``Released``;
every message carries its job's priority."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import cast

import anyio

from adapters.service.dispatcher import Dispatcher
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, FailJob, ReleaseJob
from ledger.policies.retry import RetryPolicy
from ledger.ports.transport import JobMessage, Outgoing
from ledger.status import Status
from projections.store import ViewStore
from tests.support.projection_events import T0, logged
from tests.unit.test_dispatcher_rounds import Database, FakeStore


class Recording:
    def __init__(self) -> None:
        self.sent: list[JobMessage] = []

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        for entry in entries:
            self.sent.append(entry.message if isinstance(entry, Outgoing) else entry)
        return [str(i) for i in range(len(entries))]


def sent_after(ledger: JobLedger, db: Database, transport: Recording) -> list[JobMessage]:
    """Run the dispatcher over the log written so far; the messages of that step."""
    db.rows = logged(ledger)
    dispatcher = Dispatcher(
        cast(ViewStore, FakeStore(db)), ledger, transport,  # type: ignore[arg-type]
        clock=lambda: T0, owner="test",
    )
    before = len(transport.sent)
    while anyio.run(dispatcher.step):
        pass
    return transport.sent[before:]


def test_scheduled_jobs_are_sent_on_release_with_their_priority() -> None:
    ledger = JobLedger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, retry_policy=RetryPolicy(30, 30),
        draw=lambda: 0.5,
    )
    db, transport = Database([]), Recording()
    urgent = ledger.execute(EnqueueJob(customer_id="acme", priority=7), T0).job_id
    later = ledger.execute(
        EnqueueJob(customer_id="acme", priority=-3, delay_seconds=60), T0
    ).job_id
    retried = ledger.execute(EnqueueJob(customer_id="acme", priority=2), T0).job_id
    first = sent_after(ledger, db, transport)
    assert [(m.job_id, m.priority) for m in first] == [(urgent, 7), (retried, 2)]

    ledger.execute(ClaimJob(job_id=retried, worker_id="w"), T0)
    failed = ledger.execute(FailJob(job_id=retried, attempt=1, worker_id="w", error="x"), T0)
    assert failed.status == Status.SCHEDULED
    assert sent_after(ledger, db, transport) == []  # the backoff: held, not sent

    due = T0 + timedelta(seconds=61)
    for job_id in (later, retried):
        ledger.execute(ReleaseJob(job_id=job_id), due)
    released = sent_after(ledger, db, transport)
    assert [(m.job_id, m.priority, m.attempt) for m in released] == [
        (later, -3, 0), (retried, 2, 1),
    ]
