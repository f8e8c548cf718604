"""Reading ``job_status``: one job, filtered lists, stale candidates, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from projections.queries import ReadDatabase, as_time, as_uuid


class JobStatus(msgspec.Struct, frozen=True):
    """A job as the ``job_status`` view has it."""

    job_id: UUID
    customer_id: str
    queue: str
    status: str
    attempt: int
    attempts_used: int
    max_attempts: int
    worker_id: str | None
    enqueued_at: datetime
    started_at: datetime | None
    last_heartbeat_at: datetime | None
    finished_at: datetime | None
    not_before: datetime | None
    last_error: str | None
    heartbeats: int
    refused_reports: int
    version: int
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ids and times as strings)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


def _job(row: tuple[Any, ...]) -> JobStatus:
    (job_id, customer_id, queue, status, attempt, attempts_used, max_attempts, worker_id,
     enqueued_at, started_at, last_heartbeat_at, finished_at, not_before, last_error,
     heartbeats, refused_reports, version, updated_at) = row
    enqueued, updated = as_time(enqueued_at), as_time(updated_at)
    assert enqueued is not None
    assert updated is not None
    return JobStatus(
        as_uuid(job_id), customer_id, queue, status, attempt, attempts_used, max_attempts,
        worker_id, enqueued, as_time(started_at), as_time(last_heartbeat_at),
        as_time(finished_at), as_time(not_before), last_error, heartbeats, refused_reports,
        version, updated,
    )


class JobStatusQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def get(self, job_id: UUID) -> JobStatus | None:
        rows = self.db.query("job_status.get", {"job_id": job_id})
        return _job(rows[0]) if rows else None

    def find(
        self,
        *,
        status: str | None = None,
        customer_id: str | None = None,
        queue: str | None = None,
        limit: int = 50,
    ) -> list[JobStatus]:
        """Jobs oldest first, optionally of one status, customer and queue."""
        rows = self.db.query("job_status.list", {
            "status": status, "customer_id": customer_id, "queue": queue, "limit": limit,
        })
        return [_job(row) for row in rows]

    def in_progress_before(self, before: datetime, limit: int = 1000) -> list[JobStatus]:
        """Jobs in progress whose last heartbeat is older than ``before``, oldest first."""
        rows = self.db.query("job_status.in_progress_before", {"before": before, "limit": limit})
        return [_job(row) for row in rows]

    def dead_lettered(self, *, customer_id: str | None = None, limit: int = 100) -> list[JobStatus]:
        rows = self.db.query(
            "job_status.dead_lettered", {"customer_id": customer_id, "limit": limit}
        )
        return [_job(row) for row in rows]

    def counts(self, *, customer_id: str | None = None) -> dict[str, int]:
        """How many jobs are in each status."""
        rows = self.db.query("job_status.counts", {"customer_id": customer_id})
        return {status: int(count) for status, count in rows}
