"""The log as the what-if replays read it: only the topics and fields they use, decoded
straight into small structs (times parsed by msgspec), other topics skipped. A replay
over ten million heartbeats spends most of its time here, so this is leaner than
:func:`projections.events.decode_page`, which every view needs in full.

Every struct here is ``gc=False``: it holds only scalars, times and other such structs, so
it can be in no reference cycle, and leaving the millions a replay makes untracked by the
cyclic garbage collector more than halves the replay's CPU (the collector otherwise runs
thousands of times over the pages in flight)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.utils import get_topic

from ledger.job import Job
from projections.events import RawRow


class Stamp(msgspec.Struct, frozen=True, gc=False):
    at: datetime = msgspec.field(name="_data_")


class Body(msgspec.Struct, frozen=True, gc=False):
    timestamp: Stamp


class Claimed(Body, frozen=True):
    attempt: int


class HeartbeatRecorded(Body, frozen=True):
    attempt: int


class Completed(Body, frozen=True):
    attempt: int


class Failed(Body, frozen=True):
    attempt: int


class ReportRefused(Body, frozen=True):
    attempt: int
    report: str


class StaleDetected(Body, frozen=True):
    attempt: int
    last_heartbeat_at: Stamp


class DeadLettered(Body, frozen=True):
    attempt: int
    attempts_used: int
    source: str = "ledger"
    message_id: str | None = None
    last_error: str | None = None


class AlertSent(Body, frozen=True):
    dead_letter_version: int
    delivery_id: str


BODIES: dict[str, type[Body]] = {
    get_topic(Job.Claimed): Claimed,
    get_topic(Job.HeartbeatRecorded): HeartbeatRecorded,
    get_topic(Job.Completed): Completed,
    get_topic(Job.Failed): Failed,
    get_topic(Job.ReportRefused): ReportRefused,
    get_topic(Job.StaleDetected): StaleDetected,
    get_topic(Job.DeadLettered): DeadLettered,
    get_topic(Job.AlertSent): AlertSent,
}
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    topic: msgspec.json.Decoder(body) for topic, body in BODIES.items()
}


class ReplayEvent(msgspec.Struct, frozen=True, gc=False):
    position: int
    originator_id: str
    originator_version: int
    body: Body
    at: datetime


class NotReplayable(Exception):
    """An event of a topic the replays read did not decode."""


def decode_for_replay(page: Sequence[RawRow]) -> list[ReplayEvent]:
    """The page's events of the topics the replays read, in order (others skipped)."""
    decoders = _DECODERS
    out: list[ReplayEvent] = []
    append = out.append
    for position, originator_id, version, topic, state in page:
        decoder = decoders.get(topic)
        if decoder is None:
            continue
        try:
            body = decoder.decode(state)
        except msgspec.DecodeError as error:
            raise NotReplayable(f"event {position} ({topic}): {error}") from None
        append(ReplayEvent(position, originator_id, version, body, body.timestamp.at))
    return out
