"""``GET /health?as_of=TIME|@POSITION`` (staff): the health body's view-derived parts as
they would have been (ADR 90).

The ``health_metrics`` and ``dead_letter_alerts`` views are folded in memory up to the
cut, each from its newest valid checkpoint, never touching the live tables: job counts
by status, the UTC day's completed and failed counters, workers heard of within the stale
threshold, the jobs the stale rule finds silent at that moment, and alerts pending and
failed. The live ``/health`` (no ``as_of``) is unchanged and answered from memory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from adapters.http.services import HealthSettings, ReadPool
from adapters.service.bootstrap import utc_now
from projections.asof import InvalidMoment, parse_moment, recorded_at, resolve, view_as_of
from projections.asof_reads import health
from projections.checkpoints import CheckpointStore
from projections.registry import get_view
from projections.store import ViewStore


class WorkersAsOf(msgspec.Struct):
    status: str
    active_count: int
    stale_count: int
    stale_jobs: list[str]


class AlertsAsOf(msgspec.Struct):
    status: str
    pending: int
    failed: int


class ServicesAsOf(msgspec.Struct):
    workers: WorkersAsOf
    alerts: AlertsAsOf


class MetricsAsOf(msgspec.Struct):
    jobs_pending: int
    jobs_in_progress: int
    jobs_completed_today: int
    jobs_failed_today: int


class HealthAsOfBody(msgspec.Struct):
    """The health body as of a moment (the parts that come from the views)."""

    status: str
    as_of: str
    position: int
    """The log cut the views were folded to."""
    timestamp: datetime
    """The moment judged: the time asked for, or the recorded time of event ``@position``."""
    services: ServicesAsOf
    metrics: MetricsAsOf
    jobs_by_status: dict[str, int]
    checkpoints: dict[str, int | None]
    """Per view: the position of the checkpoint it was folded from (``null``: from 0)."""
    issues: list[str] = msgspec.field(default_factory=list)


class HealthAsOf:
    """Builds :class:`HealthAsOfBody` on a session of the views and of the checkpoints."""

    def __init__(
        self, views: ReadPool, checkpoints: Callable[[], CheckpointStore],
        settings: HealthSettings, horizon: Callable[[], int] = lambda: 0,
    ) -> None:
        self.views = views
        self.checkpoints = checkpoints
        self.settings = settings
        self.horizon = horizon
        """The archive's horizon (ADR 110): a moment below it is refused, since the hot log
        alone no longer holds the events before it."""

    async def body(self, as_of: str) -> HealthAsOfBody:
        moment = parse_moment(as_of)
        if moment.time is not None and moment.time > utc_now():
            raise InvalidMoment(as_of, "that time is in the future")
        return await self.views.read(lambda store: self._read(store, as_of))

    def _read(self, store: ViewStore, as_of: str) -> HealthAsOfBody:
        moment = parse_moment(as_of)
        position = resolve(store, moment)
        horizon = self.horizon()
        if position < horizon:
            raise InvalidMoment(as_of, (
                f"it is @{position}, before the archive's horizon @{horizon}: /health folds "
                "the hot log only; ledger projections show health_metrics --as-of reads "
                "the archived events too"))
        at = moment.time or _recorded(store, position)
        checkpoints = self.checkpoints()
        try:
            metrics = view_as_of(store, checkpoints, get_view("health_metrics"), position)
            alerts = view_as_of(store, checkpoints, get_view("dead_letter_alerts"), position)
        finally:
            checkpoints.close()
        figures = health(metrics.memory, alerts.memory, at, position,
                         self.settings.stale_threshold)
        issues: list[str] = []
        stale = len(figures.stale_jobs)
        unhealthy = stale >= self.settings.stale_unhealthy
        if stale:
            issues.append(f"workers: {stale} stale jobs"
                          + (f" (unhealthy at {self.settings.stale_unhealthy})" if unhealthy
                             else ""))
        failed = figures.alerts.get("failed", 0)
        if failed:
            issues.append(f"alerts: {failed} dead-letter alerts could not be delivered")
        return HealthAsOfBody(
            status="unhealthy" if unhealthy else "degraded" if issues else "healthy",
            as_of=as_of, position=position, timestamp=at,
            services=ServicesAsOf(
                WorkersAsOf("down" if unhealthy else "degraded" if stale else "up",
                            figures.active_workers, stale, figures.stale_jobs),
                AlertsAsOf("degraded" if failed else "up", figures.alerts.get("pending", 0),
                           failed),
            ),
            metrics=MetricsAsOf(
                figures.jobs_by_status.get("pending", 0),
                figures.jobs_by_status.get("in_progress", 0),
                figures.completed_today, figures.failed_today,
            ),
            jobs_by_status=figures.jobs_by_status,
            checkpoints={
                "health_metrics": metrics.checkpoint.position if metrics.checkpoint else None,
                "dead_letter_alerts": alerts.checkpoint.position if alerts.checkpoint else None,
            },
            issues=issues,
        )


def _recorded(store: ViewStore, position: int) -> datetime:
    """When the event at ``position`` (or the last before it) was recorded."""
    page = store.read_events(max(position - 1, 0), 1, position) if position else []
    return recorded_at(page[0]) if page else utc_now()
