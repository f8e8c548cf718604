"""The queues that have jobs, with how many wait and run (from ``health_queues``)."""

from __future__ import annotations

import msgspec

from projections.queries import ReadDatabase


class QueueJobs(msgspec.Struct, frozen=True):
    queue: str
    pending: int
    in_progress: int


def queues_with_jobs(db: ReadDatabase) -> list[QueueJobs]:
    """Every queue the views have seen a job of, by name."""
    return [
        QueueJobs(str(row["queue"]), int(row.get("pending") or 0),
                  int(row.get("in_progress") or 0))
        for row in db.query("health.queues", {})
    ]
