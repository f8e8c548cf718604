"""``schedules``: one row per cron schedule (``ledger.schedule.Schedule``).

Its definition, ``state`` (``active``, ``paused`` or ``removed``), the next tick and the
last one fired (how late, by which scheduler), folded from the schedule's events. The
schedulers find due schedules through the partial index on ``next_tick`` of the active
ones (``schedules_due_idx``), never by a scan; ``ledger schedules list``, ``/schedules``,
``/health`` and ``/metrics`` read it (docs/adr/0130-schedules.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from projections.events import (
    Event,
    ScheduleAdded,
    ScheduleControlled,
    ScheduleResumed,
    ScheduleSkipped,
    ScheduleTicked,
)
from projections.model import Column, Index, Key, Kind, PageState, Row, Table, View

SCHEDULES = Table(
    name="schedules",
    kind=Kind.STATE,
    columns=(
        Column("schedule_id", "uuid", nullable=False),
        Column("name", "text", nullable=False),
        Column("cron", "text", nullable=False),
        Column("timezone", "text", nullable=False),
        Column("queue", "text", nullable=False),
        Column("customer_id", "text", nullable=False),
        Column("payload", "text", nullable=False),
        Column("missed", "text", nullable=False),
        Column("priority", "int", nullable=False),
        Column("max_attempts", "int", nullable=False),
        Column("state", "text", nullable=False),
        Column("next_tick", "timestamp"),
        Column("last_tick", "timestamp"),
        Column("last_late", "float"),
        Column("last_fired_by", "text"),
        Column("ticks", "int", nullable=False),
        Column("changed_by", "text", nullable=False),
        Column("changed_reason", "text"),
        Column("changed_at", "timestamp", nullable=False),
        Column("version", "int"),
    ),
    key=("schedule_id",),
    indexes=(Index("due_idx", ("next_tick",), where=("state", "active")),),
)

_UPDATES = (ScheduleControlled, ScheduleResumed, ScheduleTicked, ScheduleSkipped)
_CONTROLS = {"Paused": "paused", "Resumed": "active", "Removed": "removed"}


class SchedulesView(View):
    name = "schedules"
    tables = (SCHEDULES,)

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        return {
            SCHEDULES.name: {
                (e.originator_id,) for e in events
                if isinstance(e.body, _UPDATES)
                or (isinstance(e.body, ScheduleAdded) and e.originator_version > 1)
            }
        }

    def added(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ScheduleAdded)
        spec = body.spec
        row: Row = {
            "schedule_id": event.originator_id, "name": spec["name"], "cron": spec["cron"],
            "timezone": spec["timezone"], "queue": spec["queue"],
            "customer_id": spec["customer_id"],
            "payload": msgspec.json.encode(spec.get("payload")).decode(),
            "missed": spec["missed"], "priority": spec["priority"],
            "max_attempts": spec["max_attempts"], "state": "active",
            "next_tick": body.next_tick.at if body.next_tick else None,
            "changed_by": body.actor, "changed_reason": body.reason, "changed_at": event.at,
            "version": event.originator_version,
        }
        if event.originator_version == 1:
            row.update(last_tick=None, last_late=None, last_fired_by=None, ticks=0)
            state.create(SCHEDULES, (event.originator_id,), row)
        else:
            state.get(SCHEDULES, (event.originator_id,)).update(row)

    def controlled(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ScheduleControlled | ScheduleResumed)
        row = state.get(SCHEDULES, (event.originator_id,))
        row.update(
            state=_CONTROLS[event.topic.rsplit(".", 1)[-1]], changed_by=body.actor,
            changed_reason=body.reason, changed_at=event.at, version=event.originator_version,
        )
        if isinstance(body, ScheduleResumed):
            row["next_tick"] = body.next_tick.at if body.next_tick else None

    def ticked(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ScheduleTicked | ScheduleSkipped)
        row = state.get(SCHEDULES, (event.originator_id,))
        row["next_tick"] = body.next_tick.at if body.next_tick else None
        row["version"] = event.originator_version
        if isinstance(body, ScheduleTicked):
            row.update(last_tick=body.tick.at, last_late=body.late, last_fired_by=body.actor)
            row["ticks"] += 1

    handlers = {  # noqa: RUF012 - read-only dispatch table
        ScheduleAdded: added,
        ScheduleControlled: controlled,
        ScheduleResumed: controlled,
        ScheduleTicked: ticked,
        ScheduleSkipped: ticked,
    }
