"""The body of ``GET /health`` and what one check of the database found."""

from __future__ import annotations

from datetime import datetime

import msgspec

from adapters.http.health_queues import QueuesHealth
from adapters.http.health_schedules import SchedulesHealth
from adapters.http.process_info import ProcessHealth
from projections.queries.archive import ArchiveSummary
from projections.queries.health_metrics import HealthMetrics
from projections.queries.lag import ViewStatus
from projections.queries.queue_controls import QueueControl
from projections.queries.schedules import ScheduleSummary


class DatabaseHealth(msgspec.Struct):
    status: str
    latency: int | None
    """Milliseconds of one round trip (rounded up), ``None`` when down."""


class WorkersHealth(msgspec.Struct):
    status: str
    active_count: int
    stale_count: int


class RateLimiterHealth(msgspec.Struct):
    status: str
    """``up`` (shared counters in the database) or ``fallback`` (in-memory counters)."""
    since: datetime | None = None


class AlertsHealth(msgspec.Struct):
    status: str
    """``up``, or ``degraded`` when alerts failed to deliver (a 4xx recorded on the job, or
    deliveries failing in this process)."""
    pending: int = 0
    failed: int = 0


class ProjectionHealth(msgspec.Struct):
    status: str
    lag: int
    error: str | None = None


class Services(msgspec.Struct):
    database: DatabaseHealth
    workers: WorkersHealth
    rate_limiter: RateLimiterHealth
    alerts: AlertsHealth
    projections: dict[str, ProjectionHealth]


class Metrics(msgspec.Struct):
    jobs_pending: int
    jobs_in_progress: int
    jobs_completed_today: int
    jobs_failed_today: int


class Health(msgspec.Struct):
    """The body of ``GET /health`` (the existing deployment's fields, and a few more)."""

    status: str
    timestamp: str
    uptime: float
    services: Services
    metrics: Metrics
    issues: list[str] = msgspec.field(default_factory=list)
    """Why the status is not ``healthy``, one line each."""
    queues: QueuesHealth = msgspec.field(default_factory=QueuesHealth)
    """Paused queues and each controlled queue's running jobs vs its cap."""
    schedules: SchedulesHealth = msgspec.field(default_factory=SchedulesHealth)
    """Cron schedules: how many, paused, the next tick, the last one's lateness."""
    archive: ArchiveSummary = msgspec.field(default_factory=ArchiveSummary)
    """Archive segments (ADR 110): segments, archived jobs, events, bytes, the hot span."""
    process: ProcessHealth | None = None
    """The API process that answered (``ledger serve --processes N``: one of N)."""


class Check(msgspec.Struct):
    """What one look at the database found."""

    at: float
    """``time.monotonic()`` of the check."""
    checked_at: datetime
    latency_ms: float | None
    figures: HealthMetrics | None
    lag: list[ViewStatus]
    error: str | None
    alerts: dict[str, int] = msgspec.field(default_factory=dict)
    """Dead letters by alert status (``dead_letter_alerts`` view): pending, sent, failed."""
    queues: list[QueueControl] = msgspec.field(default_factory=list)
    """The controlled queues (``queue_controls`` view)."""
    schedules: ScheduleSummary = msgspec.field(default_factory=ScheduleSummary)
    """The ``schedules`` view's summary."""
    archive: ArchiveSummary = msgspec.field(default_factory=ArchiveSummary)
    """The archive's manifest and the hot log's span."""
