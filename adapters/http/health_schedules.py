"""The schedules part of ``/health`` and ``/metrics`` (issue 18, ADR 130): how many cron
schedules, how many paused, the next tick of any active one and how late the latest
fired tick was, read from the ``schedules`` view by the health check.

A tick overdue by more than :data:`OVERDUE` means no schedule ticker runs (or it cannot
keep up): ``/health`` says so and is degraded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import msgspec
from prometheus_client.core import GaugeMetricFamily

from projections.queries.schedules import ScheduleSummary

OVERDUE = timedelta(minutes=2)


class SchedulesHealth(msgspec.Struct):
    """``/health``'s ``schedules``."""

    count: int = 0
    paused: int = 0
    next_tick: datetime | None = None
    """The earliest next tick of the active schedules."""
    last_tick: datetime | None = None
    last_late_seconds: float | None = None
    """How long after its time the latest fired tick was enqueued."""


def schedules_health(
    summary: ScheduleSummary, now: datetime, issues: list[str]
) -> SchedulesHealth:
    if summary.next_tick is not None and now - summary.next_tick > OVERDUE:
        late = int((now - summary.next_tick).total_seconds())
        issues.append(f"schedules: a tick is {late} s overdue (is a schedule ticker running?)")
    return SchedulesHealth(
        count=summary.count, paused=summary.paused, next_tick=summary.next_tick,
        last_tick=summary.last_tick, last_late_seconds=summary.last_late,
    )


def schedule_gauges(summary: ScheduleSummary, now: datetime) -> Iterator[GaugeMetricFamily]:
    count = GaugeMetricFamily(
        "jobledger_schedules", "Cron schedules by state (removed ones not counted).",
        labels=["state"],
    )
    count.add_metric(["active"], summary.count - summary.paused)
    count.add_metric(["paused"], summary.paused)
    yield count
    late = GaugeMetricFamily(
        "jobledger_schedule_last_tick_late_seconds",
        "How long after its time the latest fired schedule tick was enqueued.",
    )
    late.add_metric([], summary.last_late or 0.0)
    yield late
    overdue = GaugeMetricFamily(
        "jobledger_schedule_overdue_seconds",
        "How long the earliest due tick of an active schedule has waited (0: none due).",
    )
    waited = 0.0 if summary.next_tick is None else (now - summary.next_tick).total_seconds()
    overdue.add_metric([], max(0.0, waited))
    yield overdue
