"""Reading views as of a moment (ADR 90): pure functions over in-memory views.

The same answers the live read side gives (``jobs list`` with its filters, the figures of
``/health``), computed from :class:`projections.memory.MemoryView` folded up to a log
position, and the diff of a view between two positions with the events that changed it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from ledger.policies.stale import is_stale
from projections.events import RawRow
from projections.health_metrics import (
    DAILY,
    HEALTH_DAILY,
    HEALTH_JOBS,
    HEALTH_QUEUES,
    HEALTH_WORKERS,
    STATUSES,
)
from projections.memory import MemoryView
from projections.model import Key, Kind, View
from projections.queries.job_status import JobStatus

_job = msgspec.convert


def jobs(
    memory: MemoryView,
    *,
    status: str | None = None,
    customer_id: str | None = None,
    queue: str | None = None,
    limit: int = 50,
) -> list[JobStatus]:
    """``job_status`` rows matching the filters, oldest first (as ``jobs list``)."""
    rows = [
        row for row in memory.rows["job_status"].values()
        if (status is None or row["status"] == status)
        and (customer_id is None or row["customer_id"] == customer_id)
        and (queue is None or row["queue"] == queue)
    ]
    rows.sort(key=lambda r: (r["enqueued_at"], r["job_id"]))
    return [_job(row, JobStatus) for row in rows[:max(limit, 0)]]


@dataclass
class HealthAsOf:
    """What ``/health`` would have said from the views at ``at`` (log cut ``position``)."""

    at: datetime
    position: int
    jobs_by_status: dict[str, int]
    completed_today: int
    failed_today: int
    active_workers: int
    stale_jobs: list[str]
    alerts: dict[str, int] = field(default_factory=dict)


def health(
    metrics: MemoryView,
    alerts: MemoryView,
    at: datetime,
    position: int,
    stale_threshold: timedelta,
) -> HealthAsOf:
    """The health figures from ``health_metrics`` and ``dead_letter_alerts`` as of a cut:
    counts by status, the UTC day's counters, workers seen within the threshold, and the
    jobs in progress that the stale rule finds silent at ``at``."""
    by_status = dict.fromkeys(STATUSES, 0)
    for values in metrics.counters[HEALTH_QUEUES.name].values():
        for index, name in enumerate(HEALTH_QUEUES.values):
            by_status[name] = by_status.get(name, 0) + values[index]
    daily = dict.fromkeys(DAILY, 0)
    for (day, _queue), values in metrics.counters[HEALTH_DAILY.name].items():
        if day == at.date():
            for index, name in enumerate(HEALTH_DAILY.values):
                daily[name] += values[index]
    since = at - stale_threshold
    workers = {w for (w, _q), row in metrics.rows[HEALTH_WORKERS.name].items()
               if since <= row["last_seen_at"] <= at}
    stale = sorted(
        str(row["job_id"]) for row in metrics.rows[HEALTH_JOBS.name].values()
        if row["status"] == "in_progress" and row["last_heartbeat_at"] is not None
        and is_stale(row["last_heartbeat_at"], at, stale_threshold)
    )
    counts: dict[str, int] = {}
    for row in alerts.rows["dead_letter_alerts"].values():
        counts[row["alert_status"]] = counts.get(row["alert_status"], 0) + 1
    return HealthAsOf(at, position, by_status, daily["completed"], daily["failed"],
                      len(workers), stale, counts)


@dataclass
class RowChange:
    """One row of a view that differs between two cuts, and the events that touched it."""

    table: str
    key: Key
    change: str
    """``added``, ``removed`` or ``changed``."""
    columns: dict[str, tuple[Any, Any]]
    """Column -> (before, after), for the columns that differ."""
    events: list[tuple[int, str, str]] = field(default_factory=list)
    """(position, topic, originator id) of the events between the cuts that touched it."""


Touches = dict[str, list[tuple[int, str, str]]]
"""Per originator id: (position, topic, originator id) of the events that touched it."""
TOUCHES_KEPT = 20


def touches(rows: Iterable[RawRow], into: Touches, kept: int = TOUCHES_KEPT) -> None:
    """Note which job each stored event touched (the last ``kept`` per job)."""
    for position, originator_id, _version, topic, _state in rows:
        found = into.setdefault(originator_id, [])
        found.append((position, topic.rsplit(".", 1)[-1], originator_id))
        if len(found) > kept:
            del found[0]


def diff(view: View, before: MemoryView, after: MemoryView, touched: Touches) -> list[RowChange]:
    """The rows of ``view``'s state tables that differ from ``before`` to ``after``, each
    with the events between the two whose originator is part of the row's key."""
    changes = []
    for table in view.tables:
        if table.kind is not Kind.STATE:
            continue
        old, new = before.rows[table.name], after.rows[table.name]
        for key in sorted(old.keys() | new.keys(), key=str):
            was, now = old.get(key), new.get(key)
            if was == now:
                continue
            kind = "added" if was is None else "removed" if now is None else "changed"
            columns = {
                name: ((was or {}).get(name), (now or {}).get(name)) for name in table.names
                if (was or {}).get(name) != (now or {}).get(name)
            }
            found = [e for part in key for e in touched.get(str(part), [])]
            changes.append(RowChange(table.name, key, kind, columns, found))
    return changes
