"""The ledger's stored events as the projections read them: raw rows, decoded fast.

Projections read pages of raw rows from the events table and decode each ``state`` with
one msgspec decoder per topic, straight into small frozen structs holding only what the
views need; eventsourcing's mapper (which rebuilds full domain events) is ~10x slower
and not needed to fold a view. Every topic the ledger can append is registered here;
an unknown topic, or a state that does not decode, is an :class:`EventNotUnderstood`
error that stops the view (it is never skipped).

Schema evolution follows the house rule: new fields get defaults here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec
from eventsourcing.utils import get_topic

from ledger.action import Action
from ledger.job import Job
from ledger.queue import Queue
from ledger.schedule import Schedule
from ledger.tally import RequestTally


class Stamp(msgspec.Struct, frozen=True):
    """eventsourcing's encoding of a datetime: ``{"_type_": "datetime_iso", "_data_": ...}``."""

    iso: str = msgspec.field(name="_data_")

    @property
    def at(self) -> datetime:
        return parse_time(self.iso)


def parse_time(iso: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (naive times are taken as UTC)."""
    value = datetime.fromisoformat(iso)
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.utcoffset() == UTC.utcoffset(None) else value.astimezone(UTC)


class Body(msgspec.Struct, frozen=True):
    """Fields every stored event has."""

    timestamp: Stamp


class Enqueued(Body, frozen=True):
    customer_id: str
    queue: str
    max_attempts: int
    priority: int = 0
    run_at: Stamp | None = None
    traceparent: str | None = None


class Claimed(Body, frozen=True):
    attempt: int
    worker_id: str


class HeartbeatRecorded(Body, frozen=True):
    attempt: int
    worker_id: str


class Completed(Body, frozen=True):
    attempt: int
    worker_id: str


class Failed(Body, frozen=True):
    attempt: int
    worker_id: str
    error: str
    error_normalised: bool = False


class StaleDetected(Body, frozen=True):
    attempt: int
    worker_id: str
    last_heartbeat_at: Stamp
    threshold_seconds: float
    detected_by: str


class Requeued(Body, frozen=True):
    attempt: int
    reason: str
    not_before: Stamp | None = None
    actor: str | None = None
    action_id: str | None = None


class DeadLettered(Body, frozen=True):
    attempt: int
    reason: str
    attempts_used: int
    last_error: str | None = None
    source: str = "ledger"
    message_id: str | None = None


class Redriven(Body, frozen=True):
    dead_letter_version: int
    actor: str
    reason: str | None = None
    action_id: str | None = None


class Released(Body, frozen=True):
    reason: str = "due"


class CancelRequested(Body, frozen=True):
    attempt: int
    actor: str
    reason: str | None = None
    action_id: str | None = None


class Cancelled(Body, frozen=True):
    attempt: int
    actor: str
    by: str
    reason: str | None = None
    action_id: str | None = None


class ReportRefused(Body, frozen=True):
    attempt: int
    worker_id: str
    report: str
    reason: str
    current_attempt: int


class AlertSent(Body, frozen=True):
    dead_letter_version: int
    delivery_id: str
    channel: str


class AlertFailed(Body, frozen=True):
    dead_letter_version: int
    reason: str
    channel: str


class RequestsTallied(Body, frozen=True):
    subject: str
    preset: str
    window_start: Stamp
    window_seconds: int
    admitted: int
    refused: int
    reporter: str


class ActionStarted(Body, frozen=True):
    kind: str
    total: int
    actor: str = ""
    reason: str | None = None


class ActionProgressed(Body, frozen=True):
    done: int
    acted: int = 0


class ActionEnded(Body, frozen=True):
    """``Finished``: the action went through every job it selected."""


class ActionInterrupted(Body, frozen=True):
    """A run of the action failed (it stays resumable)."""

    error: str = ""


class QueueOpened(Body, frozen=True):
    """A queue's aggregate was created (``ledger.queue.Queue``)."""

    name: str


class QueuePaused(Body, frozen=True):
    actor: str
    reason: str | None = None


class QueueResumed(Body, frozen=True):
    actor: str
    reason: str | None = None


class QueueLimitSet(Body, frozen=True):
    actor: str
    max_running: int | None = None
    reason: str | None = None


class SlotTaken(Body, frozen=True):
    attempt: int


class SlotsTaken(Body, frozen=True):
    slots: dict[str, int]


class SlotFreed(Body, frozen=True):
    attempt: int
    why: str


class ScheduleAdded(Body, frozen=True):
    """``Added`` or ``Redefined`` (``ledger.schedule.Schedule``)."""

    spec: dict[str, Any]
    actor: str
    next_tick: Stamp | None = None
    reason: str | None = None


class ScheduleControlled(Body, frozen=True):
    """``Paused`` or ``Removed``."""

    actor: str
    reason: str | None = None


class ScheduleResumed(Body, frozen=True):
    actor: str
    reason: str | None = None
    next_tick: Stamp | None = None


class ScheduleTicked(Body, frozen=True):
    """``TickEnqueued``: the tick, how late it was fired, the next one."""

    tick: Stamp
    late: float
    actor: str
    next_tick: Stamp | None = None


class ScheduleSkipped(Body, frozen=True):
    """``TicksSkipped``: missed ticks of a ``skip`` schedule, the next one."""

    actor: str
    next_tick: Stamp | None = None


JobBody = (
    Enqueued | Claimed | HeartbeatRecorded | Completed | Failed | StaleDetected | Requeued
    | DeadLettered | Redriven | ReportRefused | AlertSent | AlertFailed | Released
    | CancelRequested | Cancelled
)
ActionBody = ActionStarted | ActionProgressed | ActionEnded | ActionInterrupted
QueueBody = (
    QueueOpened | QueuePaused | QueueResumed | QueueLimitSet | SlotTaken | SlotsTaken | SlotFreed
)
ScheduleBody = (
    ScheduleAdded | ScheduleControlled | ScheduleResumed | ScheduleTicked | ScheduleSkipped
)
AnyBody = JobBody | RequestsTallied | ActionBody | QueueBody | ScheduleBody

BODIES: dict[str, type[Body]] = {
    get_topic(Job.Enqueued): Enqueued,
    get_topic(Job.Claimed): Claimed,
    get_topic(Job.HeartbeatRecorded): HeartbeatRecorded,
    get_topic(Job.Completed): Completed,
    get_topic(Job.Failed): Failed,
    get_topic(Job.StaleDetected): StaleDetected,
    get_topic(Job.Requeued): Requeued,
    get_topic(Job.DeadLettered): DeadLettered,
    get_topic(Job.Redriven): Redriven,
    get_topic(Job.ReportRefused): ReportRefused,
    get_topic(Job.AlertSent): AlertSent,
    get_topic(Job.AlertFailed): AlertFailed,
    get_topic(Job.Released): Released,
    get_topic(Job.CancelRequested): CancelRequested,
    get_topic(Job.Cancelled): Cancelled,
    get_topic(RequestTally.Recorded): RequestsTallied,
    get_topic(Action.Started): ActionStarted,
    get_topic(Action.Progressed): ActionProgressed,
    get_topic(Action.Finished): ActionEnded,
    get_topic(Action.Interrupted): ActionInterrupted,
}
"""Every topic the ledger appends, and the struct its state decodes into."""
BODIES.update({
    get_topic(Queue.Opened): QueueOpened,
    get_topic(Queue.Paused): QueuePaused,
    get_topic(Queue.Resumed): QueueResumed,
    get_topic(Queue.LimitSet): QueueLimitSet,
    get_topic(Queue.SlotTaken): SlotTaken,
    get_topic(Queue.SlotsTaken): SlotsTaken,
    get_topic(Queue.SlotFreed): SlotFreed,
})
BODIES.update({
    get_topic(Schedule.Added): ScheduleAdded,
    get_topic(Schedule.Redefined): ScheduleAdded,
    get_topic(Schedule.Paused): ScheduleControlled,
    get_topic(Schedule.Resumed): ScheduleResumed,
    get_topic(Schedule.Removed): ScheduleControlled,
    get_topic(Schedule.TickEnqueued): ScheduleTicked,
    get_topic(Schedule.TicksSkipped): ScheduleSkipped,
})

_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    topic: msgspec.json.Decoder(body) for topic, body in BODIES.items()
}


class RawEvent(NamedTuple):
    """One row of the events table."""

    position: int
    """The notification id: the event's position in the log."""
    originator_id: str
    """The aggregate's id as canonical UUID text (hashes fast; a view key)."""
    originator_version: int
    topic: str
    state: bytes


RawRow = tuple[int, str, int, str, bytes]
"""A raw row as the stores read it: (position, originator_id, version, topic, state)."""


class Event(NamedTuple):
    """A decoded event with its place in the log."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    body: AnyBody
    at: datetime
    """When the ledger recorded it (the body's timestamp, parsed once)."""


class EventNotUnderstood(Exception):
    """A stored event could not be read; the view stops here instead of skipping it."""

    def __init__(self, raw: RawEvent, reason: str) -> None:
        self.position = raw.position
        self.topic = raw.topic
        self.originator_id = raw.originator_id
        self.reason = reason
        super().__init__(
            f"event {raw.position} (topic {raw.topic!r}, originator {raw.originator_id} "
            f"v{raw.originator_version}): {reason}"
        )


def decode(raw: RawRow) -> Event:
    """Decode one raw row, or raise :class:`EventNotUnderstood`."""
    events, error = decode_page([raw])
    if error is not None:
        raise error
    return events[0]


def decode_page(
    page: Sequence[RawRow],
) -> tuple[list[Event], EventNotUnderstood | None]:
    """Decode a page of raw rows in order, up to the first one that does not decode.

    Returns the events before it and the error (``None`` when the whole page decoded), so
    the runner applies everything up to the bad event and stops exactly there.
    """
    decoders = _DECODERS
    out: list[Event] = []
    append = out.append
    for position, originator_id, version, topic, state in page:
        decoder = decoders.get(topic)
        if decoder is None:
            raw = RawEvent(position, originator_id, version, topic, state)
            return out, EventNotUnderstood(raw, "unknown topic")
        try:
            body = decoder.decode(state)
            at = parse_time(body.timestamp.iso)
        except (msgspec.DecodeError, ValueError) as error:
            raw = RawEvent(position, originator_id, version, topic, state)
            return out, EventNotUnderstood(raw, f"state does not decode: {error}")
        append(Event(position, originator_id, version, topic, body, at))
    return out, None
