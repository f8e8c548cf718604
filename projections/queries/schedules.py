"""Reading ``schedules``: the schedules, the due ones (the schedulers' index) and the
summary ``/health`` and ``/metrics`` show."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from projections.queries import ReadDatabase, RowShape
from projections.schedules import SCHEDULES


class ScheduleRow(msgspec.Struct, frozen=True):
    """One schedule as the view has it (``payload`` parsed from its JSON text)."""

    schedule_id: UUID
    name: str
    cron: str
    timezone: str
    queue: str
    customer_id: str
    payload: Any
    missed: str
    priority: int
    max_attempts: int
    state: str
    next_tick: datetime | None
    last_tick: datetime | None
    last_late: float | None
    last_fired_by: str | None
    ticks: int
    changed_by: str
    changed_reason: str | None
    changed_at: datetime
    version: int | None
    """The schedule's version this row folds (a ticker decides on it; ``None``: rows of
    migration 0050 before 0051)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


class ScheduleSummary(msgspec.Struct, frozen=True):
    """How many schedules, how many paused, the next tick of any active one and how late
    the latest fired tick was (seconds)."""

    count: int = 0
    paused: int = 0
    next_tick: datetime | None = None
    last_tick: datetime | None = None
    last_late: float | None = None


ROWS = RowShape(SCHEDULES, ScheduleRow, json=("payload",))


class ScheduleQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def all(self) -> list[ScheduleRow]:
        """Every schedule not removed, by name."""
        return ROWS.decode_all(self.db.query("schedules.all", {}))

    def due(self, now: datetime, limit: int, pivot: UUID) -> list[ScheduleRow]:
        """At most ``limit`` active schedules whose next tick is at or before ``now`` (the
        partial index ``schedules_due_idx``), by id from ``pivot`` on, then wrapping round
        to the ids before it: tickers that each take a random pivot mostly read different
        schedules."""
        params = {"now": now, "limit": limit, "pivot": str(pivot)}
        rows = self.db.query("schedules.due_from", params)
        if len(rows) < limit:
            rows += self.db.query("schedules.due_before", {**params, "limit": limit - len(rows)})
        return ROWS.decode_all(rows)

    def summary(self) -> ScheduleSummary:
        rows = self.db.query("schedules.summary", {})
        last = self.db.query("schedules.last_fired", {})
        counts = rows[0] if rows else {}
        return msgspec.convert({
            "count": int(counts.get("count") or 0), "paused": int(counts.get("paused") or 0),
            "next_tick": counts.get("next_tick"),
            **({"last_tick": last[0]["last_tick"], "last_late": last[0]["last_late"]}
               if last else {}),
        }, ScheduleSummary)
