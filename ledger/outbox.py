"""The transactional outbox of the local queue (ADR 151): which queue rows a batch of events
asks for, written by the recorder in the transaction that appends the events.

The rule is the dispatcher's (``adapters/service/dispatcher.py``): every ``Enqueued``,
``Requeued``, ``Redriven`` and ``Released`` sends the job's message, except an ``Enqueued``
with a future ``run_at`` and a ``Requeued`` with a future ``not_before`` (the job is
``scheduled``; its ``Released`` is sent when due). Two cases stay with the dispatcher, which
reads them from the log as before: a message of a queue that is paused when the batch is
decided (the dispatcher holds it until the queue is resumed), and every event appended by
a process without the outbox (before an upgrade, or on SQS). :class:`OutboxBatch` names
the events whose message it carries (their index in the batch); the recorder records their
positions beside the rows, and the dispatcher skips exactly those.

Pure: the time, the message ids and the paused queues are arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.job import Job
from ledger.ports.queue_store import NewMessage
from ledger.ports.transport import JobMessage, encode_message

OUTBOX = "outbox"
"""The keyword under which an :class:`OutboxBatch` reaches the recorder's
``insert_events`` (eventsourcing passes a processing event's ``saved_kwargs`` through)."""


@dataclass(frozen=True)
class OutboxBatch:
    """The queue rows of one append, for the local queue ``queue``."""

    queue: str
    indexes: list[int]
    """Index in the appended batch of the event each row was asked for."""
    rows: list[NewMessage]
    columns: tuple[list[Any], ...] | None = None
    """The rows as the append's eight arrays (message ids, job ids, attempts, bodies,
    sent and visible times, queues, priorities) when they were built so directly (new jobs,
    ``ledger/new_jobs.py``); else :func:`outbox_columns` makes them from ``rows``."""


def outbox_columns(batch: OutboxBatch) -> tuple[list[Any], ...]:
    """The batch's rows as the append's eight arrays."""
    if batch.columns is not None:
        return batch.columns
    rows = batch.rows
    return (
        [r.message_id for r in rows], [r.job_id for r in rows], [r.attempt for r in rows],
        [r.body for r in rows], [r.sent_at for r in rows], [r.visible_at for r in rows],
        [r.job_queue for r in rows], [r.priority for r in rows],
    )


def held(event: Any) -> bool:
    """True when the event leaves its job ``scheduled``: the scheduler releases it."""
    if isinstance(event, Job.Enqueued):
        return event.run_at is not None and event.run_at > event.timestamp
    if isinstance(event, Job.Requeued):
        return event.not_before is not None and event.not_before > event.timestamp
    return False


def delay_of(event: Any, now: datetime) -> float:
    if isinstance(event, Job.Requeued) and event.not_before is not None:
        return max(0.0, (event.not_before - now).total_seconds())
    return 0.0


def outbox_batch(
    events: Sequence[Any],
    jobs: dict[UUID, Job],
    *,
    queue: str,
    now: datetime,
    paused: Callable[[str], bool],
    new_id: Callable[[], UUID],
) -> OutboxBatch | None:
    """The rows ``events`` ask for (``None`` when none): a job's message carries its
    attempt, customer, queue and priority as decided in this batch. ``paused`` is asked
    once per queue of the batch: the application's answer may read the store (a queue
    never controlled is looked up, a cached one has its version checked), and a batch of
    the scheduler's releases or of enqueues is mostly one queue."""
    pauses: dict[str, bool] = {}
    indexes: list[int] = []
    rows: list[NewMessage] = []
    sent_at = now.timestamp()
    for index, event in enumerate(events):
        if not isinstance(event, Job.Enqueued | Job.Requeued | Job.Redriven | Job.Released):
            continue
        job = jobs.get(event.originator_id)
        if job is None or held(event):
            continue
        if job.queue not in pauses:
            pauses[job.queue] = paused(job.queue)
        if pauses[job.queue]:
            continue
        attempt = event.attempt if isinstance(event, Job.Requeued) else job.attempt
        message = JobMessage(
            job_id=job.id, attempt=attempt, customer_id=job.customer_id,
            queue=job.queue, dedup_key=f"{job.id}:v{event.originator_version}",
            priority=job.priority,
        )
        indexes.append(index)
        rows.append(NewMessage(
            message_id=str(new_id()), job_id=str(job.id), attempt=attempt,
            body=encode_message(message), sent_at=sent_at,
            visible_at=sent_at + delay_of(event, now), job_queue=job.queue,
            priority=job.priority,
        ))
    return OutboxBatch(queue, indexes, rows) if rows else None
