"""How a health check becomes ``/health``'s status: healthy, degraded or unhealthy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from adapters.http.health import HealthMonitor, health_json
from adapters.http.health_body import Check
from adapters.http.ratelimit import Limiter, LimiterStatus
from adapters.http.services import HealthSettings, ReadPool
from projections.queries.health_metrics import HealthMetrics, QueueHealth
from projections.queries.lag import ViewStatus

AT = datetime(2026, 11, 28, 12, 0, 0, 500_000, tzinfo=UTC)


@dataclass
class FakeLimiter:
    database_unreachable: bool = False

    @property
    def status(self) -> LimiterStatus:
        return LimiterStatus("memory" if self.database_unreachable else "database", AT, None)


@dataclass
class FakeParts:
    """What the monitor is built from, as the report needs it (no database)."""

    limiter: FakeLimiter = field(default_factory=FakeLimiter)
    stale_unhealthy: int = 5
    max_lag: int = 100

    def uptime(self) -> float:
        return 12.345

    def monitor(self) -> HealthMonitor:
        settings = HealthSettings(timedelta(minutes=10), self.stale_unhealthy, self.max_lag)
        views = cast(ReadPool, None)  # report() reads no view
        return HealthMonitor(views, cast(Limiter, self.limiter), lambda: AT, settings, self.uptime)


def check(
    stale: int = 0,
    lag: int = 0,
    error: str | None = None,
    view_error: str | None = None,
    failed_alerts: int = 0,
) -> Check:
    figures = HealthMetrics(
        at=AT,
        queues=[QueueHealth("default", jobs_pending=5, jobs_in_progress=2,
                            jobs_completed_today=10, stale_count=stale)],
        active_workers=2,
    )  # fmt: skip
    views = [ViewStatus("job_status", 90, 90 + lag, lag, 0, None, view_error, None)]
    alerts = {"pending": 1, "sent": 3, "failed": failed_alerts}
    return Check(
        0.0, AT, 0.4, None if error else figures, [] if error else views, error, alerts
    )


def report(check: Check, **parts: Any) -> dict[str, Any]:
    monitor = FakeParts(**parts).monitor()
    body = monitor.report(check)
    return {"status": body.status, "issues": body.issues, "body": body}


def test_the_deployments_body_when_all_is_well() -> None:
    body = report(check())["body"]
    assert body.status == "healthy"
    assert body.timestamp == "2026-11-28T12:00:00Z"
    assert body.uptime == 12.35
    assert (body.services.database.status, body.services.database.latency) == ("up", 1)
    workers = body.services.workers
    assert (workers.status, workers.active_count, workers.stale_count) == ("up", 2, 0)
    assert (body.metrics.jobs_pending, body.metrics.jobs_in_progress) == (5, 2)
    assert body.metrics.jobs_completed_today == 10
    assert (body.services.alerts.status, body.services.alerts.pending) == ("up", 1)
    assert health_json(body)["status"] == "pass"


@pytest.mark.parametrize(
    ("made", "api", "status", "issue"),
    [
        (check(error="OperationalError: connection refused"), {}, "unhealthy", "database"),
        (check(stale=5), {}, "unhealthy", "5 stale jobs"),
        (check(stale=1), {}, "degraded", "1 stale jobs"),
        (check(lag=101), {}, "degraded", "101 events behind"),
        (check(view_error="event 7 broke it"), {}, "degraded", "stopped"),
        (check(), {"limiter": FakeLimiter(database_unreachable=True)}, "degraded", "in-memory"),
        (check(failed_alerts=2), {}, "degraded", "2 dead-letter alerts could not be delivered"),
    ],
)
def test_status_and_issues(made: Check, api: dict[str, Any], status: str, issue: str) -> None:
    result = report(made, **api)
    assert result["status"] == status
    assert any(issue in line for line in result["issues"]), result["issues"]
    expected = {"healthy": "pass", "degraded": "warn", "unhealthy": "fail"}[status]
    assert health_json(result["body"])["status"] == expected


def test_the_limiter_type_has_what_health_reads() -> None:
    assert isinstance(Limiter.database_unreachable, property)
