"""Reading ``job_status``: one job, filtered lists, stale candidates, dead letters; and
the same shape made from a job aggregate (while the view has not caught up yet)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from ledger.job import Job
from projections.job_status import JOB_STATUS
from projections.queries import ReadDatabase, RowShape


class JobStatus(msgspec.Struct, frozen=True):
    """A job as the ``job_status`` view has it (checked against its table by ``ROWS``)."""

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
    priority: int
    cancel_requested: int
    """1 when the running attempt was asked to stop (ADR 100)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ids and times as strings)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


ROWS = RowShape(JOB_STATUS, JobStatus)


def status_of_job(job: Job) -> JobStatus:
    """A job aggregate in the job_status view's shape (a test folds histories both ways
    and compares the two)."""
    return JobStatus(
        job_id=job.id, customer_id=job.customer_id, queue=job.queue, status=str(job.status),
        attempt=job.attempt, attempts_used=job.attempts_used, max_attempts=job.max_attempts,
        worker_id=job.worker_id, enqueued_at=job.enqueued_at, started_at=job.claimed_at,
        last_heartbeat_at=job.last_heartbeat_at, finished_at=job.finished_at,
        not_before=job.not_before, last_error=job.last_error, heartbeats=job.heartbeats,
        refused_reports=job.refused_reports, version=job.version,
        updated_at=_updated_at(job), priority=job.priority,
        cancel_requested=int(job.cancel_requested),
    )


def _updated_at(job: Job) -> datetime:
    modified: Any = job.modified_on
    return modified if isinstance(modified, datetime) else job.enqueued_at


def id_range(prefix: str) -> tuple[UUID, UUID]:
    """The lowest and the highest id that start with ``prefix``: hex digits, any case,
    hyphens ignored (``a3b55162``, ``A3B55162-D6``). ``ValueError`` for anything else."""
    digits = prefix.replace("-", "").lower()
    if not 0 < len(digits) <= 32 or not set(digits) <= set("0123456789abcdef"):
        raise ValueError(f"{prefix!r} is not the start of a job id (1-32 hex digits)")
    padding = 32 - len(digits)
    return UUID(digits + "0" * padding), UUID(digits + "f" * padding)


class JobStatusQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def get(self, job_id: UUID) -> JobStatus | None:
        rows = self.db.query("job_status.get", {"job_id": job_id})
        return ROWS.decode(rows[0]) if rows else None

    def with_id_prefix(self, prefix: str, *, limit: int = 2) -> list[UUID]:
        """Ids of the jobs whose id starts with ``prefix`` (:func:`id_range`), in id order,
        at most ``limit``: a range on the key, answered by the primary key's index."""
        low, high = id_range(prefix)
        rows = self.db.query("job_status.with_id_prefix",
                             {"low": low, "high": high, "limit": limit})
        return [UUID(str(row["job_id"])) for row in rows]

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
        return ROWS.decode_all(rows)

    def in_progress_before(self, before: datetime, limit: int = 1000) -> list[JobStatus]:
        """Jobs in progress whose last heartbeat is older than ``before``, oldest first."""
        rows = self.db.query("job_status.in_progress_before", {"before": before, "limit": limit})
        return ROWS.decode_all(rows)

    def due_scheduled(
        self, now: datetime, limit: int = 1000, *, after: tuple[object, UUID] | None = None
    ) -> list[tuple[UUID, object]]:
        """The scheduled jobs due by ``now``, oldest due first (the scheduler's round, from
        the partial index on ``not_before``): ``(job_id, not_before)``, after the row
        ``after`` (a pair this method returned) when given."""
        if after is None:
            rows = self.db.query("job_status.due_scheduled", {"now": now, "limit": limit})
        else:
            rows = self.db.query("job_status.due_scheduled_after", {
                "now": now, "limit": limit, "after_at": after[0], "after_id": after[1],
            })
        return [(UUID(str(row["job_id"])), row["not_before"]) for row in rows]

    def dead_lettered(self, *, customer_id: str | None = None, limit: int = 100) -> list[JobStatus]:
        rows = self.db.query(
            "job_status.dead_lettered", {"customer_id": customer_id, "limit": limit}
        )
        return ROWS.decode_all(rows)

    def count_dead_lettered(self, upto: int) -> int:
        """How many jobs are dead-lettered, counted up to ``upto`` (from the partial index,
        not a scan)."""
        rows = self.db.query("job_status.count_dead_lettered", {"limit": upto})
        return int(rows[0]["count"])

    def counts(self, *, customer_id: str | None = None) -> dict[str, int]:
        """How many jobs are in each status."""
        rows = self.db.query("job_status.counts", {"customer_id": customer_id})
        return {row["status"]: int(row["count"]) for row in rows}
