"""The jobs a bulk action selects from ``job_status``: counted, and paged in id order
(keyset pagination: each page starts after the last id of the previous one)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.action import ActionFilter
from projections.queries import ReadDatabase
from projections.queries.job_status import ROWS, JobStatus


def _params(job_filter: ActionFilter) -> dict[str, Any]:
    return {
        "status": job_filter.status, "customer_id": job_filter.customer_id,
        "queue": job_filter.queue, "since": job_filter.since, "until": job_filter.until,
        "error_contains": job_filter.error_contains,
    }


class ActionTargets:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def count(self, job_filter: ActionFilter) -> int:
        """How many jobs match the filter now."""
        rows = self.db.query("job_status.action_count", _params(job_filter))
        return int(rows[0]["count"])

    def count_upto(self, job_filter: ActionFilter, limit: int) -> int:
        """How many jobs match the filter now, counted up to ``limit``."""
        params = _params(job_filter) | {"limit": limit}
        rows = self.db.query("job_status.action_count_upto", params)
        return int(rows[0]["count"])

    def page(self, job_filter: ActionFilter, after: UUID | None, limit: int) -> list[JobStatus]:
        """At most ``limit`` matching jobs with an id after ``after``, in id order."""
        params = _params(job_filter) | {"after": after, "limit": limit}
        return ROWS.decode_all(self.db.query("job_status.action_page", params))
