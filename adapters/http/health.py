"""``/health`` (the deployment's body), ``/health/live`` and ``/health/ready``.

The figures come from the ``health_metrics`` view's read API and the views' tracking (lag),
never from the log. A check is one database session of its own and a handful of indexed
reads; it runs at most once a second, in the background while someone is asking, so a
probe never waits on the database and never loads it (``/health`` answers from memory).

Status: ``unhealthy`` (503) when the database does not answer or stale jobs pile up
(``stale_unhealthy`` or more); ``degraded`` for softer trouble: some stale jobs, a view
lagging or stopped, the rate limiter on its in-memory fallback, alerts failing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from adapters.http.access import rule
from adapters.http.health_asof import HealthAsOf, HealthAsOfBody
from adapters.http.health_body import (
    AlertsHealth,
    Check,
    DatabaseHealth,
    Health,
    Metrics,
    ProjectionHealth,
    RateLimiterHealth,
    Services,
    WorkersHealth,
)
from adapters.http.health_queues import queues_health
from adapters.http.health_schedules import schedules_health
from adapters.http.process_info import process_of
from adapters.http.ratelimit import Limiter
from adapters.http.services import HealthSettings, ReadPool
from adapters.service.metrics import REGISTRY
from ledger.access import Role
from projections.queries.archive import ArchiveQueries, ArchiveSummary
from projections.queries.dead_letter_alerts import DeadLetterAlertQueries
from projections.queries.health_metrics import HealthMetrics, HealthMetricsQueries
from projections.queries.lag import ViewStatus, view_status
from projections.queries.queue_controls import QueueControl, QueueControlQueries
from projections.queries.schedules import ScheduleQueries, ScheduleSummary
from projections.registry import VIEWS
from projections.store import ViewStore

log = logging.getLogger(__name__)

HEALTH_JSON = "application/health+json"
AS_OF_ACCESS = rule(Role.STAFF, preset="staff")
"""``/health?as_of=`` is for staff (the live ``/health`` stays open)."""
REFRESH_SECONDS = 1.0
"""How old the cached check may get before it is redone."""
CHECK_TIMEOUT_SECONDS = 2.0
"""A check that takes longer means the database is not answering."""
IDLE_SECONDS = 30.0
"""Stop checking in the background when nobody asked for this long."""


class HealthMonitor:
    """Keeps the latest :class:`Check`, redone at most every ``REFRESH_SECONDS``."""

    def __init__(
        self, views: ReadPool, limiter: Limiter, clock: Callable[[], datetime],
        settings: HealthSettings, uptime: Callable[[], float],
    ) -> None:
        self.views = views
        self.limiter = limiter
        self.clock = clock
        self.settings = settings
        self.uptime = uptime
        self.latest: Check | None = None
        self._asked = 0.0
        self._wake = anyio.Event()
        self._alerts = _alert_counts()
        self._alerts_failing = False
        self.process = process_of()

    async def run(self) -> None:
        """Check while someone is asking (start in the app's task group)."""
        while True:
            if time.monotonic() - self._asked > IDLE_SECONDS:
                self._wake = anyio.Event()
                await self._wake.wait()
            await self.check()
            await anyio.sleep(REFRESH_SECONDS)

    async def current(self) -> Check:
        """The latest check; the first one is awaited, later ones are never."""
        self._asked = time.monotonic()
        self._wake.set()
        latest = self.latest
        if latest is None or time.monotonic() - latest.at > REFRESH_SECONDS + CHECK_TIMEOUT_SECONDS:
            return await self.check()
        return latest

    async def check(self) -> Check:
        started = time.monotonic()
        now = self.clock()
        try:
            with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
                latency, figures, lag, alerts, queues, schedules, archive = (
                    await anyio.to_thread.run_sync(
                        self.views.use, self._read, abandon_on_cancel=True
                    )
                )
        except Exception as error:
            check = Check(started, now, None, None, [], f"{type(error).__name__}: {error}")
        else:
            check = Check(
                started, now, latency, figures, lag, None, alerts, queues, schedules, archive
            )
        self.latest = check
        self._note_alerts()
        return check

    def _read(
        self, store: ViewStore
    ) -> tuple[
        float, HealthMetrics, list[ViewStatus], dict[str, int], list[QueueControl],
        ScheduleSummary, ArchiveSummary,
    ]:
        started = time.perf_counter()
        store.head()
        latency = (time.perf_counter() - started) * 1000
        threshold = self.settings.stale_threshold
        figures = HealthMetricsQueries(store).snapshot(
            self.clock(), stale_threshold=threshold, active_window=threshold
        )
        alerts = DeadLetterAlertQueries(store).counts()
        queues = QueueControlQueries(store).all()
        schedules = ScheduleQueries(store).summary()
        lag = view_status(store, list(VIEWS.values()))
        archive = ArchiveQueries(store).summary()
        return latency, figures, lag, alerts, queues, schedules, archive

    def _alerts_health(self, check: Check, issues: list[str]) -> AlertsHealth:
        return _alerts_health_of(check.alerts, self._alerts_failing, issues)

    def _note_alerts(self) -> None:
        sent, failed = _alert_counts()
        if failed > self._alerts[1]:
            self._alerts_failing = True
        elif sent > self._alerts[0]:
            self._alerts_failing = False
        self._alerts = (sent, failed)

    def report(self, check: Check) -> Health:
        """The ``/health`` body for ``check``, with the limiter's and alerts' state now."""
        settings = self.settings
        issues: list[str] = []
        database, workers, metrics, unhealthy = _from_views(
            check, settings.stale_unhealthy, issues
        )
        projections = _projections(check, settings.max_lag, issues)
        if self.limiter.database_unreachable:
            issues.append("rate limiter: on in-memory counters (database unreachable)")
            limiter = RateLimiterHealth("fallback", self.limiter.status.fallback_since)
        else:
            limiter = RateLimiterHealth("up")
        alerts = self._alerts_health(check, issues)
        schedules = schedules_health(check.schedules, check.checked_at, issues)
        status = "unhealthy" if unhealthy else ("degraded" if issues else "healthy")
        return Health(
            status=status,
            timestamp=check.checked_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            uptime=round(self.uptime(), 2),
            services=Services(database, workers, limiter, alerts, projections),
            metrics=metrics,
            issues=issues,
            queues=queues_health(check.queues),
            schedules=schedules,
            archive=check.archive,
            process=self.process,
        )


def _alerts_health_of(
    counts: dict[str, int], failing_here: bool, issues: list[str]
) -> AlertsHealth:
    failed = counts.get("failed", 0)
    if failed:
        issues.append(f"alerts: {failed} dead-letter alerts could not be delivered")
    if failing_here:
        issues.append("alerts: delivery failing")
    state = "degraded" if failed or failing_here else "up"
    return AlertsHealth(state, counts.get("pending", 0), failed)


def _from_views(
    check: Check, stale_unhealthy: int, issues: list[str]
) -> tuple[DatabaseHealth, WorkersHealth, Metrics, bool]:
    """The database, workers and metrics parts; True when that makes it unhealthy."""
    figures = check.figures
    if check.error is not None or figures is None:
        issues.append(f"database: {check.error}")
        return DatabaseHealth("down", None), WorkersHealth("unknown", 0, 0), Metrics(
            0, 0, 0, 0
        ), True
    database = DatabaseHealth("up", math.ceil(check.latency_ms or 0))
    stale = figures.stale_count
    unhealthy = stale >= stale_unhealthy
    if unhealthy:
        issues.append(f"workers: {stale} stale jobs (unhealthy at {stale_unhealthy})")
    elif stale:
        issues.append(f"workers: {stale} stale jobs")
    state = "down" if unhealthy else ("degraded" if stale else "up")
    metrics = Metrics(
        figures.jobs_pending, figures.jobs_in_progress, figures.jobs_completed_today,
        figures.jobs_failed_today,
    )
    return database, WorkersHealth(state, figures.active_workers, stale), metrics, unhealthy


def _projections(check: Check, max_lag: int, issues: list[str]) -> dict[str, ProjectionHealth]:
    projections = {}
    for view in check.lag:
        if view.error:
            state = "stopped"
            issues.append(f"projection {view.view}: stopped: {view.error}")
        elif view.lag > max_lag:
            state = "lagging"
            issues.append(f"projection {view.view}: {view.lag} events behind")
        else:
            state = "up"
        projections[view.view] = ProjectionHealth(state, view.lag, view.error)
    return projections


def _alert_counts() -> tuple[float, float]:
    sent = REGISTRY.get_sample_value("jobledger_alerts_sent_total") or 0.0
    failed = REGISTRY.get_sample_value("jobledger_alerts_failed_total") or 0.0
    return sent, failed


def _wants_health_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return HEALTH_JSON in accept.lower()


class Readiness(msgspec.Struct):
    status: str
    detail: str | None = None


@get(
    "/health", summary="Health, from the views and a database round trip", tags=["health"],
    responses={503: ResponseSpec(Health, description="Unhealthy")},
    opt={"alternate_media": HEALTH_JSON, "access_with_query": {"as_of": AS_OF_ACCESS}},
)
async def health(
    request: Request[Any, Any, Any], monitor: NamedDependency[HealthMonitor],
    health_as_of: NamedDependency[HealthAsOf | None],
    as_of: Annotated[str | None, QueryParameter(max_length=64, description=(
        "Staff: the body as of a time with a zone (2026-12-01T03:00Z) or @POSITION, from the "
        "views folded to that cut (ADR 90)."))] = None,
) -> Response[Health | HealthAsOfBody]:
    """The deployment's health body; 503 when unhealthy. ``Accept: application/health+json``
    gets the same check in that format (pass / warn / fail, with checks). With ``as_of``
    (staff), the view-derived parts as they were then (always 200)."""
    if as_of is not None and health_as_of is not None:
        past: Response[Health | HealthAsOfBody] = Response(
            await health_as_of.body(as_of), headers={"Cache-Control": "no-store"}
        )
        return past
    report = monitor.report(await monitor.current())
    code = 503 if report.status == "unhealthy" else 200
    headers = {"Cache-Control": "no-store"}
    if _wants_health_json(request):
        alternate: Response[Any] = Response(
            health_json(report), status_code=code, media_type=HEALTH_JSON, headers=headers
        )
        return alternate
    return Response(report, status_code=code, headers=headers)


@get("/health/live", summary="Liveness (touches nothing)", tags=["health"])
async def live() -> dict[str, str]:
    """The process answers: nothing else is checked."""
    return {"status": "alive"}


@get(
    "/health/ready", summary="Readiness (the database answers)", tags=["health"],
    responses={503: ResponseSpec(Readiness, description="Not ready")},
)
async def ready(monitor: NamedDependency[HealthMonitor]) -> Response[Readiness]:
    """Ready when the database answers (503 otherwise)."""
    check = await monitor.current()
    if check.error is not None:
        return Response(Readiness("not_ready", f"database: {check.error}"), status_code=503)
    return Response(Readiness("ready"), status_code=200)


_PASS = {"healthy": "pass", "degraded": "warn", "unhealthy": "fail"}


def _state(status: str) -> str:
    return {"up": "pass", "fallback": "warn", "degraded": "warn", "lagging": "warn"}.get(
        status, "fail"
    )


def health_json(report: Health) -> dict[str, Any]:
    """The report as draft-inadarei-api-health-check (``application/health+json``)."""
    services = report.services
    time_ = report.timestamp
    checks: dict[str, list[dict[str, Any]]] = {
        "database:responseTime": [{
            "componentType": "datastore", "observedValue": services.database.latency,
            "observedUnit": "ms", "status": _state(services.database.status), "time": time_,
        }],
        "workers:staleJobs": [{
            "componentType": "component", "observedValue": services.workers.stale_count,
            "status": _state(services.workers.status), "time": time_,
        }],
        "workers:active": [{
            "componentType": "component", "observedValue": services.workers.active_count,
            "status": "pass", "time": time_,
        }],
        "alerts:failed": [{
            "componentType": "component", "observedValue": services.alerts.failed,
            "status": _state(services.alerts.status), "time": time_,
        }],
        "rateLimiter:counters": [{
            "componentType": "component", "observedValue": services.rate_limiter.status,
            "status": _state(services.rate_limiter.status), "time": time_,
        }],
        "uptime": [{
            "componentType": "system", "observedValue": report.uptime, "observedUnit": "s",
            "status": "pass", "time": time_,
        }],
    }
    for name, view in services.projections.items():
        checks[f"projection:{name}:lag"] = [{
            "componentType": "component", "observedValue": view.lag, "observedUnit": "events",
            "status": _state(view.status), "time": time_,
            **({"output": view.error} if view.error else {}),
        }]
    body: dict[str, Any] = {
        "status": _PASS[report.status],
        "serviceId": "job-ledger",
        "description": "job-ledger HTTP API",
        "checks": checks,
    }
    if report.issues:
        body["output"] = "; ".join(report.issues)
    return body


ROUTES = [health, live, ready]
