"""Reading ``health_metrics``: the numbers ``/health`` reports, per queue and in total.

Every figure is one indexed lookup: counters per queue, today's counters, workers seen
within the active window, and in-progress jobs whose heartbeat is older than the stale
threshold (a partial index holds only in-progress jobs).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from ledger.policies.stale import stale_cutoff
from projections.health_metrics import DAILY, STATUSES
from projections.queries import ReadDatabase


class QueueHealth(msgspec.Struct):
    queue: str
    jobs_pending: int = 0
    jobs_in_progress: int = 0
    jobs_completed: int = 0
    jobs_dead_lettered: int = 0
    jobs_scheduled: int = 0
    jobs_cancelled: int = 0
    jobs_enqueued_today: int = 0
    jobs_completed_today: int = 0
    jobs_failed_today: int = 0
    """Attempts that failed today (each may be retried)."""
    jobs_stale_today: int = 0
    jobs_dead_lettered_today: int = 0
    jobs_redriven_today: int = 0
    jobs_cancelled_today: int = 0
    active_workers: int = 0
    stale_count: int = 0


class HealthMetrics(msgspec.Struct):
    at: datetime
    queues: list[QueueHealth]
    active_workers: int
    """Distinct workers heard of within the window (a worker may serve several queues)."""

    @property
    def jobs_pending(self) -> int:
        return sum(q.jobs_pending for q in self.queues)

    @property
    def jobs_in_progress(self) -> int:
        return sum(q.jobs_in_progress for q in self.queues)

    @property
    def jobs_completed_today(self) -> int:
        return sum(q.jobs_completed_today for q in self.queues)

    @property
    def jobs_failed_today(self) -> int:
        return sum(q.jobs_failed_today for q in self.queues)

    @property
    def jobs_dead_lettered_today(self) -> int:
        return sum(q.jobs_dead_lettered_today for q in self.queues)

    @property
    def stale_count(self) -> int:
        return sum(q.stale_count for q in self.queues)


class HealthMetricsQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def snapshot(
        self, now: datetime, *, stale_threshold: timedelta, active_window: timedelta
    ) -> HealthMetrics:
        """The health figures at ``now`` (UTC day of ``now`` for the daily ones)."""
        queues: dict[str, QueueHealth] = {}

        def queue(name: str) -> QueueHealth:
            found = queues.get(name)
            if found is None:
                found = queues[name] = QueueHealth(name)
            return found

        for row in self.db.query("health.queues", {}):
            q = queue(row["queue"])
            for status in STATUSES:  # health_queues' counters, as jobs_<status>
                setattr(q, f"jobs_{status}", int(row[status]))
        for row in self.db.query("health.daily", {"day": now.date()}):
            q = queue(row["queue"])
            for counter in DAILY:  # health_daily's counters, as jobs_<counter>_today
                setattr(q, f"jobs_{counter}_today", int(row[counter]))
        since = now - active_window
        for row in self.db.query("health.active_workers", {"since": since}):
            queue(row["queue"]).active_workers = int(row["count"])
        stale = {"before": stale_cutoff(now, stale_threshold)}  # the stale rule's cutoff
        for row in self.db.query("health.stale", stale):
            queue(row["queue"]).stale_count = int(row["count"])
        total = self.db.query("health.active_workers_total", {"since": since})
        return HealthMetrics(
            at=now, queues=[queues[k] for k in sorted(queues)],
            active_workers=int(total[0]["workers"]) if total else 0,
        )
