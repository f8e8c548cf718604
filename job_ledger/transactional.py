"""Enqueue within the application's own PostgreSQL transaction (ADR 122).

:func:`enqueue_in` decides the enqueue with the ledger's own model (``Job.enqueue``),
maps its event with the ledger's mapper, and appends it on the application's psycopg
connection through the ledger's append function (the same statement the recorder runs).
Nothing is committed here: the job exists if and only if the application's transaction
commits, and the dispatcher, which reads the log, sends it once it is committed.

Readers of the log stop before any transaction still running (ADR 150), so the open
transaction holds the views and the dispatcher back until it ends. When the application's
transaction already had its transaction id (it wrote before enqueueing), or the enqueue
has an idempotency key, the events table's EXCLUSIVE lock is taken and held until the
application commits: every other append to the ledger waits for it. Enqueue first in a
transaction for other appends not to wait, and keep the transaction short.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from eventsourcing.persistence import StoredEvent
from psycopg import sql
from psycopg.rows import tuple_row

from adapters.postgres.event_recorder import LedgerEventRecorder
from job_ledger.errors import TransactionalEnqueueUnsupported
from job_ledger.types import Enqueued
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.errors import IdempotencyConflict
from ledger.job import Job
from ledger.job_ids import idempotent_job_id
from ledger.policies.controls import scheduled_until

READ_STREAM = sql.SQL(
    "SELECT originator_version, topic, state FROM {schema}.{table} "
    "WHERE originator_id = %s ORDER BY originator_version"
)
LOCK = sql.SQL("LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE")


def _recorder(ledger: JobLedger) -> LedgerEventRecorder:
    recorder = ledger.recorder
    if not isinstance(recorder, LedgerEventRecorder):
        raise TransactionalEnqueueUnsupported(
            "enqueue in the application's transaction needs the ledger on PostgreSQL "
            f"(this one records with {type(recorder).__name__})"
        )
    return recorder


def enqueue_in(
    ledger: JobLedger, connection: Any, command: EnqueueJob, now: datetime
) -> Enqueued:
    """Append ``command``'s job on ``connection`` (a psycopg connection to the ledger's
    database, inside the application's transaction); commit or roll back is the
    application's. An idempotency key already used in the log (or earlier in this same
    transaction) returns that job, ``created`` false; with a different queue, payload or
    max_attempts it raises :class:`IdempotencyConflict`."""
    recorder = _recorder(ledger)
    names = {
        "schema": sql.Identifier(recorder.datastore.schema),
        "table": sql.Identifier(recorder.events_table_name),
    }
    with connection.cursor(row_factory=tuple_row) as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        (lock_timeout,) = cursor.fetchone()
        if command.idempotency_key is None:
            job_id = uuid.uuid4()
        else:
            job_id = idempotent_job_id(command.customer_id, command.idempotency_key)
            cursor.execute(LOCK.format(**names))  # no one appends until we commit
            cursor.execute(READ_STREAM.format(**names), (job_id,))
            existing = _job_of(ledger, job_id, cursor.fetchall())
            if existing is not None:
                return _replayed(existing, command)
        job = Job.enqueue(
            job_id=job_id, customer_id=command.customer_id, queue=command.queue,
            payload=command.payload, max_attempts=command.max_attempts,
            idempotency_key=command.idempotency_key, now=now, priority=command.priority,
            run_at=scheduled_until(command.run_at, command.delay_seconds, now),
            traceparent=command.traceparent,
        )
        stored = [ledger.mapper.to_stored_event(event) for event in job.collect_events()]
        cursor.execute(recorder.append_statement, (
            [e.originator_id for e in stored], [e.originator_version for e in stored],
            [e.topic for e in stored], [e.state for e in stored],
        ))
        cursor.fetchall()
        # the append function SET LOCAL its lock timeout: the application's comes back
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
    return Enqueued(job_id=job.id, status=str(job.status), created=True)


def _job_of(ledger: JobLedger, job_id: uuid.UUID, rows: list[Any]) -> Job | None:
    if not rows:
        return None
    aggregate: Any = None
    for version, topic, state in rows:
        stored = StoredEvent(
            originator_id=job_id, originator_version=version, topic=topic, state=bytes(state)
        )
        event: Any = ledger.mapper.to_domain_event(stored)
        aggregate = event.mutate(aggregate)
    return aggregate if isinstance(aggregate, Job) else None


def _replayed(job: Job, command: EnqueueJob) -> Enqueued:
    if (job.queue, job.payload, job.max_attempts) != (
        command.queue, command.payload, command.max_attempts
    ):
        assert command.idempotency_key is not None
        raise IdempotencyConflict(command.customer_id, command.idempotency_key)
    return Enqueued(job_id=job.id, status=str(job.status), created=False)
