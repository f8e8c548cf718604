"""A job's story for its page, from its events alone (pure): the timeline with runs of
heartbeats folded into one row, and each attempt as a lane on a time axis."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.job import Job
from projections.timeline import event_name, event_record

HEARTBEAT = "HeartbeatRecorded"
ENDS = {"Completed": "completed", "Failed": "failed", "StaleDetected": "stale",
        "Cancelled": "cancelled", "DeadLettered": "dead_lettered"}


@dataclass
class Row:
    """One row of the timeline: an event, or a run of heartbeats."""

    kind: str
    version: int
    recorded_at: datetime
    data: str
    """The event's data as indented JSON (shown in a ``<details>``)."""
    summary: str = ""
    last_version: int | None = None
    """The run's last event (a folded run of heartbeats)."""


@dataclass
class Lane:
    """One attempt: claimed, its heartbeats, how it ended, placed on the job's axis."""

    attempt: int
    worker_id: str
    start: datetime
    end: datetime | None = None
    outcome: str = "running"
    heartbeats: int = 0
    left: float = 0.0
    width: float = 0.0
    """Percent of the axis."""


@dataclass
class Story:
    rows: list[Row] = field(default_factory=list)
    lanes: list[Lane] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None


def _every(first: datetime, last: datetime, count: int) -> str:
    if count < 2:
        return ""
    seconds = (last - first).total_seconds() / (count - 1)
    return f", every {seconds:.0f} s" if seconds >= 1 else f", every {seconds:.2f} s"


def heartbeat_run(first: Job.Event, last: Job.Event, count: int) -> str:
    """``42 heartbeats 10:01:02-10:21:02, every 30 s``."""
    if count == 1:
        return f"1 heartbeat {first.timestamp:%H:%M:%S}"
    return (f"{count} heartbeats {first.timestamp:%H:%M:%S}-{last.timestamp:%H:%M:%S}"
            + _every(first.timestamp, last.timestamp, count))


def _data(event: Job.Event) -> str:
    return json.dumps(event_record(event)["data"], indent=2, ensure_ascii=False, default=str)


def timeline(events: list[Job.Event]) -> list[Row]:
    """The events in order, each run of consecutive heartbeats as one row."""
    rows: list[Row] = []
    run: list[Job.Event] = []

    def close_run() -> None:
        if run:
            rows.append(Row(
                HEARTBEAT, run[0].originator_version, run[0].timestamp, _data(run[-1]),
                heartbeat_run(run[0], run[-1], len(run)), run[-1].originator_version,
            ))
            run.clear()

    for event in events:
        if event_name(event) == HEARTBEAT:
            run.append(event)
            continue
        close_run()
        rows.append(Row(event_name(event), event.originator_version, event.timestamp,
                        _data(event), _summary(event)))
    close_run()
    return rows


def _summary(event: Job.Event) -> str:
    parts = []
    for key in ("attempt", "worker_id", "actor", "reason", "error", "by", "source"):
        value: Any = getattr(event, key, None)
        if value is not None and value != "":
            parts.append(f"{key}={value}")
    return " ".join(parts)


def lanes(events: list[Job.Event]) -> list[Lane]:
    """One lane per attempt, placed in percent of the span from the first to the last
    event (an attempt still running reaches the end of the axis)."""
    found: dict[int, Lane] = {}
    for event in events:
        name = event_name(event)
        attempt = getattr(event, "attempt", None)
        if name == "Claimed" and isinstance(attempt, int):
            found[attempt] = Lane(attempt, str(getattr(event, "worker_id", "")), event.timestamp)
        elif isinstance(attempt, int) and attempt in found:
            lane = found[attempt]
            if name == HEARTBEAT:
                lane.heartbeats += 1
            elif name in ENDS and lane.end is None:
                lane.end, lane.outcome = event.timestamp, ENDS[name]
    if not events:
        return []
    first, last = events[0].timestamp, events[-1].timestamp
    span = max((last - first).total_seconds(), 1e-6)
    out = []
    for lane in sorted(found.values(), key=lambda x: x.attempt):
        end = lane.end or last
        lane.left = round(100 * (lane.start - first).total_seconds() / span, 2)
        lane.width = max(round(100 * (end - lane.start).total_seconds() / span, 2), 0.5)
        out.append(lane)
    return out


def story(events: list[Job.Event]) -> Story:
    if not events:
        return Story()
    return Story(timeline(events), lanes(events), events[0].timestamp, events[-1].timestamp)


def actions(events: list[Job.Event]) -> list[Row]:
    """The operator's events (each names its actor and why), in order."""
    return [Row(event_name(e), e.originator_version, e.timestamp, _data(e), _summary(e))
            for e in events if getattr(e, "actor", None)]
