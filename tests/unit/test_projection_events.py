"""Decoding stored events for the projections: every topic known, the unknown refused."""

from __future__ import annotations

import inspect

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ledger.action import Action
from ledger.job import Job
from ledger.queue import Queue
from ledger.schedule import Schedule
from ledger.tally import RequestTally
from projections.events import (
    BODIES,
    DeadLettered,
    EventNotUnderstood,
    RawEvent,
    decode,
    decode_page,
)
from projections.model import ViewError
from tests.support.projection_events import T0, raw

BASES = {"Event", "Created"}
"""eventsourcing's generated bases of an aggregate's events; never appended themselves."""
JOB_ID = "0c795414-7d2b-5d9f-832a-e1728d334bdf"
ENQUEUED = get_topic(Job.Enqueued)


def ledger_event_classes() -> list[type[Aggregate.Event]]:
    classes = []
    for aggregate in (Job, RequestTally, Action, Queue, Schedule):
        for _, member in inspect.getmembers(aggregate, inspect.isclass):
            if (
                issubclass(member, Aggregate.Event)
                and member.__qualname__.startswith(aggregate.__name__ + ".")
                and member.__name__ not in BASES
            ):
                classes.append(member)
    return classes


@pytest.mark.parametrize("event_class", ledger_event_classes(), ids=lambda c: c.__qualname__)
def test_every_event_the_ledger_appends_is_known_to_the_projections(
    event_class: type[Aggregate.Event],
) -> None:
    # A new event added to the model without a body here would stop every view on it.
    assert get_topic(event_class) in BODIES


def test_the_registry_names_no_topic_the_ledger_lacks() -> None:
    assert set(BODIES) == {get_topic(c) for c in ledger_event_classes()}


def test_an_unknown_topic_is_not_understood_and_named() -> None:
    row = raw(7, JOB_ID, 2, "ledger.job:Job.Teleported", attempt=1)
    with pytest.raises(EventNotUnderstood) as caught:
        decode(row)
    assert caught.value.position == 7
    assert caught.value.topic == "ledger.job:Job.Teleported"
    assert "event 7" in str(caught.value)
    assert "unknown topic" in str(caught.value)


def test_a_page_decodes_up_to_the_first_bad_event() -> None:
    good = raw(1, JOB_ID, 1, ENQUEUED, customer_id="acme", queue="default", max_attempts=3)
    bad = raw(2, JOB_ID, 2, get_topic(Job.Claimed), attempt="one", worker_id="w")
    after = raw(3, JOB_ID, 3, get_topic(Job.Claimed), attempt=1, worker_id="w")
    events, error = decode_page([good, bad, after])
    assert [e.position for e in events] == [1]
    assert error is not None
    assert error.position == 2
    assert "does not decode" in error.reason


def test_a_missing_field_with_a_default_decodes_to_the_default() -> None:
    # Events written before DeadLettered had a source still decode (schema evolution).
    row = raw(4, JOB_ID, 4, get_topic(Job.DeadLettered), attempt=3, reason="failed",
              attempts_used=3)
    event = decode(row)
    assert isinstance(event.body, DeadLettered)
    assert event.body.source == "ledger"
    assert event.body.last_error is None


def test_times_are_aware_utc_whatever_offset_was_stored() -> None:
    row = raw(1, JOB_ID, 1, ENQUEUED, at=T0, customer_id="a", queue="q", max_attempts=1)
    assert decode(row).at == T0
    shifted = row[4].replace(b"+00:00", b"+02:00")
    event = decode((*row[:4], shifted))
    assert event.at.utcoffset() is not None
    assert event.at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.at.hour == T0.hour - 2


def test_view_error_from_an_event_not_understood_names_view_event_and_topic() -> None:
    error = EventNotUnderstood(RawEvent(*raw(9, JOB_ID, 5, "x:Y", attempt=1)), "unknown topic")
    failure = ViewError.not_understood("job_status", error)
    assert failure.view == "job_status"
    assert failure.position == 9
    assert failure.topic == "x:Y"
    assert "view 'job_status' stopped at event 9 (topic 'x:Y'" in str(failure)
