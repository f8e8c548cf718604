"""A new job built directly from its ``Enqueued`` event (issue 19). Pure.

eventsourcing creates an aggregate generically: ``_create`` copies and extends its keyword
arguments, the frozen dataclass ``__init__`` sets each of the event's thirteen fields
through ``object.__setattr__``, and ``Created.mutate`` matches the event's fields to the
parameters of ``__base_init__`` and ``__init__`` by signature. For a job that was about
half of an enqueue's decision. Here the same event and the same job are built with the
fields named once: :func:`enqueued_job` is ``Job.enqueue``, :func:`job_from_enqueued` is
``Job.Enqueued.mutate`` (also when a job is loaded from the store). A test checks that
both give what eventsourcing's generic path gives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic, resolve_topic


def enqueued_job(
    job_class: type[Any], *, job_id: UUID, now: datetime, customer_id: str, queue: str,
    payload: Any, max_attempts: int, idempotency_key: str | None, priority: int,
    run_at: datetime | None, traceparent: str | None,
) -> Any:
    """A new ``job_class`` with its ``Enqueued`` event pending, as ``_create`` makes it."""
    event = object.__new__(job_class.Enqueued)  # frozen: its fields are set in __dict__
    event.__dict__.update(
        originator_id=job_id, originator_version=job_class.INITIAL_VERSION, timestamp=now,
        originator_topic=get_topic(job_class), customer_id=customer_id, queue=queue,
        payload=payload, max_attempts=max_attempts, idempotency_key=idempotency_key,
        priority=priority, run_at=run_at, traceparent=traceparent,
    )
    job = job_from_enqueued(event)
    job.pending_events.append(event)
    return job


def job_from_enqueued(event: Any) -> Any:
    """The job an ``Enqueued`` event creates (``Created.mutate``, its fields passed by
    name instead of matched by signature)."""
    job_class = resolve_topic(event.originator_topic)
    job = job_class.__new__(job_class)
    job.__base_init__(event.originator_id, event.originator_version, event.timestamp)
    job.__init__(
        event.customer_id, event.queue, event.payload, event.max_attempts,
        event.idempotency_key, priority=event.priority, run_at=event.run_at,
        traceparent=event.traceparent,
    )
    return job
