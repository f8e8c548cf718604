"""The queues part of ``/health`` and ``/metrics`` (issue 14, ADR 100): paused queues (by
whom, why, since) and each controlled queue's running jobs against its cap, read from the
``queue_controls`` view by the health check.

A paused queue is an operator's decision, not trouble: it does not make ``/health``
degraded. ``/metrics`` gives ``jobledger_queue_paused{queue}`` and
``jobledger_queue_running{queue}`` series of their own only to the configured queues
(``METRICS_QUEUES``); the others are summed under ``queue="other"`` (how many of them are
paused, how many of their jobs hold slots), so the label set stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import msgspec
from prometheus_client.core import GaugeMetricFamily

from projections.queries.queue_controls import QueueControl

OTHER_QUEUES = "other"


class ControlledQueue(msgspec.Struct):
    """One controlled queue in ``/health``."""

    paused: bool
    running: int
    """Jobs of the queue holding a slot now."""
    max_running: int | None = None
    """The cap (``null``: none)."""
    paused_by: str | None = None
    paused_reason: str | None = None
    paused_at: datetime | None = None


class QueuesHealth(msgspec.Struct):
    """``/health``'s ``queues``: the paused ones by name, and every controlled queue."""

    paused: list[str] = msgspec.field(default_factory=list)
    controlled: dict[str, ControlledQueue] = msgspec.field(default_factory=dict)


def queues_health(controls: Sequence[QueueControl]) -> QueuesHealth:
    """The ``queues`` part of the health body from the view's rows."""
    return QueuesHealth(
        paused=[c.queue for c in controls if c.paused],
        controlled={
            c.queue: ControlledQueue(
                paused=bool(c.paused), running=c.running, max_running=c.max_running,
                paused_by=c.paused_by, paused_reason=c.paused_reason, paused_at=c.paused_at,
            )
            for c in controls
        },
    )


def queue_gauges(
    controls: Sequence[QueueControl], labelled: frozenset[str]
) -> Iterator[GaugeMetricFamily]:
    """``jobledger_queue_paused`` and ``jobledger_queue_running``, by bounded label."""
    paused: dict[str, int] = {}
    running: dict[str, int] = {}
    for control in controls:
        label = control.queue if control.queue in labelled else OTHER_QUEUES
        paused[label] = paused.get(label, 0) + control.paused
        running[label] = running.get(label, 0) + control.running
    paused_family = GaugeMetricFamily(
        "jobledger_queue_paused", "1 while an operator has the queue paused (other: how "
        "many unconfigured queues are), from the queue_controls view.", labels=["queue"],
    )
    running_family = GaugeMetricFamily(
        "jobledger_queue_running", "Jobs of a controlled queue holding a slot of its cap "
        "now, from the queue_controls view.", labels=["queue"],
    )
    for label in sorted(paused):
        paused_family.add_metric([label], paused[label])
        running_family.add_metric([label], running[label])
    yield paused_family
    yield running_family
