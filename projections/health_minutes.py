"""``health_minutes``: per UTC minute, how many jobs were enqueued, completed, failed (an
attempt failed), dead-lettered and recovered after going stale: the console's charts
(issue 15). A counter per minute, moved by the event alone (no job state is read), so
folding it costs one row update per event and reading the last hours is one key lookup
per minute (:mod:`projections.queries.health_minutes`)."""

from __future__ import annotations

from datetime import datetime

from projections.events import Completed, DeadLettered, Enqueued, Event, Failed, StaleDetected
from projections.model import Column, Kind, PageState, Table, View

MINUTE_COUNTERS = ("enqueued", "completed", "failed", "dead_lettered", "stale")

HEALTH_MINUTES = Table(
    name="health_minutes",
    kind=Kind.COUNTER,
    columns=(
        Column("minute", "timestamp", nullable=False),
        *(Column(name, "int", nullable=False) for name in MINUTE_COUNTERS),
    ),
    key=("minute",),
)


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


class HealthMinutesView(View):
    name = "health_minutes"
    tables = (HEALTH_MINUTES,)

    def _count(self, event: Event, state: PageState, counter: str) -> None:
        state.add(HEALTH_MINUTES, (minute_of(event.at),), **{counter: 1})

    def enqueued(self, event: Event, state: PageState) -> None:
        self._count(event, state, "enqueued")

    def completed(self, event: Event, state: PageState) -> None:
        self._count(event, state, "completed")

    def failed(self, event: Event, state: PageState) -> None:
        self._count(event, state, "failed")

    def dead_lettered(self, event: Event, state: PageState) -> None:
        self._count(event, state, "dead_lettered")

    def stale(self, event: Event, state: PageState) -> None:
        self._count(event, state, "stale")

    handlers = {  # noqa: RUF012 - read-only dispatch table
        Enqueued: enqueued,
        Completed: completed,
        Failed: failed,
        DeadLettered: dead_lettered,
        StaleDetected: stale,
    }
