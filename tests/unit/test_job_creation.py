"""A job built directly from its ``Enqueued`` event (``ledger/job_creation.py``, issue 19)
is the job eventsourcing's generic ``_create`` and ``Created.mutate`` build: the same event,
the same state, the same pending events; a job loaded from an event stored before a field
existed gets that field's default, as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import uuid4

import pytest

from ledger.application import JobLedger
from ledger.job import Job

NOW = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def generic(**fields: Any) -> Job:
    job: Job = Job._create(Job.Enqueued, id=fields.pop("job_id"), timestamp=fields.pop("now"),
                           **fields)  # fmt: skip
    return job


def state(job: Job) -> dict[str, Any]:
    return {k: v for k, v in vars(job).items() if k != "_pending_events"}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"priority": 7, "run_at": NOW + timedelta(hours=1), "traceparent": "00-" + "a" * 32},
        {"idempotency_key": "invoice-42", "payload": {"a": [1, 2.5, None, "é\u2028"]}},
    ],
)
def test_enqueue_builds_what_the_generic_path_builds(extra: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "job_id": uuid4(), "now": NOW, "customer_id": "acme", "queue": "emails",
        "payload": {"n": 1}, "max_attempts": 3, "idempotency_key": None, "priority": 0,
        "run_at": None, "traceparent": None, **extra,
    }  # fmt: skip
    fast, slow = Job.enqueue(**fields), generic(**fields)
    assert state(fast) == state(slow)
    assert fast.pending_events == slow.pending_events
    assert vars(fast.pending_events[0]) == vars(slow.pending_events[0])
    replayed: Any = cast(Any, fast.pending_events[0]).mutate(None)
    assert isinstance(replayed, Job)
    assert state(replayed) == state(slow)


def test_a_stored_event_without_the_later_fields_loads_with_their_defaults() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    job = Job.enqueue(
        job_id=uuid4(), customer_id="acme", queue="default", payload=None, max_attempts=3,
        idempotency_key=None, now=NOW,
    )
    stored = ledger.mapper.to_stored_event(job.pending_events[0])
    old_state = stored.state.replace(b',"priority":0,"run_at":null,"traceparent":null', b"")
    assert old_state != stored.state
    event = ledger.mapper.to_domain_event(type(stored)(
        originator_id=stored.originator_id, originator_version=1, topic=stored.topic,
        state=old_state,
    ))  # fmt: skip
    loaded: Any = cast(Any, event).mutate(None)
    assert isinstance(loaded, Job)
    assert (loaded.priority, loaded.traceparent, loaded.not_before) == (0, None, None)
    assert state(loaded) == state(job)

