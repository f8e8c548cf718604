"""``GET /metrics``: this process's counters (:mod:`adapters.service.metrics`) and the
views' gauges.

Jobs by status and projection lag are read from the health monitor's latest check (the
``health_metrics`` view and the views' tracking, at most a second old), so a scrape never
costs the database more than ``/health`` does.
"""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.http.health import HealthMonitor
from adapters.http.health_body import Check
from adapters.http.health_queues import queue_gauges
from adapters.http.health_schedules import schedule_gauges
from adapters.http.ratelimit import Limiter
from adapters.service.metrics import REGISTRY
from projections.queries.archive import ArchiveSummary
from projections.queries.health_metrics import QueueHealth

STATUS_FIELDS = {
    "pending": "jobs_pending",
    "in_progress": "jobs_in_progress",
    "completed": "jobs_completed",
    "dead_lettered": "jobs_dead_lettered",
    "stale": "stale_count",
}
"""``jobledger_jobs``' statuses (and the stale gauge) and the figures they read."""


OTHER_QUEUES = "other"
"""The ``queue`` label of every queue not configured (``METRICS_QUEUES``): clients name
queues, so the label set is bounded by configuration, not by what they send."""


class ViewGauges(Collector):
    """Gauges from one health check; ``queues`` get series of their own."""

    def __init__(
        self, check: Check, limiter: Limiter, queues: frozenset[str] = frozenset({"default"})
    ) -> None:
        self.check = check
        self.limiter = limiter
        self.queues = queues

    def _by_label(self, queues: list[QueueHealth]) -> dict[str, dict[str, int]]:
        """Each queue's counts under its label, the unconfigured ones summed as other."""
        by_label: dict[str, dict[str, int]] = {}
        for queue in queues:
            label = queue.queue if queue.queue in self.queues else OTHER_QUEUES
            counts = by_label.setdefault(label, dict.fromkeys(STATUS_FIELDS, 0))
            for status, field in STATUS_FIELDS.items():
                counts[status] += getattr(queue, field)
        return by_label

    def collect(self) -> Iterator[GaugeMetricFamily]:
        check = self.check
        jobs = GaugeMetricFamily(
            "jobledger_jobs", "Jobs by queue and status (health_metrics view).",
            labels=["queue", "status"],
        )
        stale = GaugeMetricFamily(
            "jobledger_jobs_stale", "Jobs in progress past the stale threshold, by queue.",
            labels=["queue"],
        )
        workers = GaugeMetricFamily(
            "jobledger_workers_active", "Workers heard of within the stale threshold."
        )
        if check.figures is not None:
            for label, counts in self._by_label(check.figures.queues).items():
                for status, value in counts.items():
                    if status == "stale":
                        stale.add_metric([label], value)
                    else:
                        jobs.add_metric([label, status], value)
            workers.add_metric([], check.figures.active_workers)
        yield jobs
        yield stale
        yield workers
        lag = GaugeMetricFamily(
            "jobledger_projection_lag_events", "Events each view is behind the log.",
            labels=["view"],
        )
        stopped = GaugeMetricFamily(
            "jobledger_projection_stopped", "1 when a view stopped on an event.",
            labels=["view"],
        )
        for view in check.lag:
            lag.add_metric([view.view], view.lag)
            stopped.add_metric([view.view], 1 if view.error else 0)
        yield lag
        yield stopped
        yield from queue_gauges(check.queues, self.queues)
        yield from schedule_gauges(check.schedules, check.checked_at)
        alerts = GaugeMetricFamily(
            "jobledger_dead_letter_alerts", "Dead letters by alert status (pending, sent, "
            "failed), from the dead_letter_alerts view.", labels=["status"],
        )
        for status, count in sorted(check.alerts.items()):
            alerts.add_metric([status], count)
        yield alerts
        database = GaugeMetricFamily(
            "jobledger_database_up", "1 when the last health check reached the database."
        )
        database.add_metric([], 0 if check.error else 1)
        yield database
        fallback = GaugeMetricFamily(
            "jobledger_rate_limit_fallback", "1 while the limiter uses in-memory counters."
        )
        fallback.add_metric([], 1 if self.limiter.on_fallback else 0)
        yield fallback
        yield from archive_gauges(check.archive)


def archive_gauges(archive: ArchiveSummary) -> Iterator[GaugeMetricFamily]:
    """The archive's manifest and the hot log's span (ADR 110)."""
    for name, help_text, value in (
        ("segments", "Archive segments recorded.", archive.segments),
        ("jobs", "Jobs archived into segments.", archive.archived_jobs),
        ("events", "Events archived into segments.", archive.archived_events),
        ("bytes", "Bytes of the archive's segments.", archive.archive_bytes),
        ("hot_oldest_position", "Log position of the oldest event in the hot log.",
         archive.oldest_hot_position),
        ("log_head", "Log position of the newest event.", archive.head),
    ):
        gauge = GaugeMetricFamily(f"jobledger_archive_{name}", help_text)
        gauge.add_metric([], value)
        yield gauge


@get("/metrics", summary="Prometheus metrics", tags=["health"], media_type=CONTENT_TYPE_LATEST)
async def metrics(
    monitor: NamedDependency[HealthMonitor], limiter: NamedDependency[Limiter]
) -> Response[bytes]:
    """Prometheus text format."""
    check = await monitor.current()
    views = CollectorRegistry()
    views.register(ViewGauges(check, limiter, monitor.settings.metric_queues))
    body = generate_latest(REGISTRY) + generate_latest(views)
    # The header given whole: with only a text/ media type, Litestar appends a second charset.
    return Response(
        body, media_type=CONTENT_TYPE_LATEST, headers={"content-type": CONTENT_TYPE_LATEST}
    )


ROUTES = [metrics]
