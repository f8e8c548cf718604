"""The jobs a bulk action selects from ``job_status``: counted, and paged in id order
(keyset pagination: each page starts after the last id of the previous one).

A filter with an error text reads the error index (``projections.job_errors``, ADR 141):
the distinct texts that hold it, then their jobs by text id in id order, not every
erring job's text."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.action import ActionFilter
from projections.queries import ReadDatabase
from projections.queries.job_status import ROWS, JobStatus

EVERY = 2**62
"""A limit no count reaches."""


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
        if job_filter.error_contains is not None:
            return self.count_upto(job_filter, EVERY)
        rows = self.db.query("job_status.action_count", _params(job_filter))
        return int(rows[0]["count"])

    def count_upto(self, job_filter: ActionFilter, limit: int) -> int:
        """How many jobs match the filter now, counted up to ``limit``."""
        params = _params(job_filter) | {"limit": limit}
        name = "error_count_upto" if job_filter.error_contains is not None else "action_count_upto"
        rows = self.db.query(f"job_status.{name}", params)
        return int(rows[0]["count"])

    def page(self, job_filter: ActionFilter, after: UUID | None, limit: int) -> list[JobStatus]:
        """At most ``limit`` matching jobs with an id after ``after``, in id order."""
        params = _params(job_filter) | {"after": after, "limit": limit}
        name = "error_page" if job_filter.error_contains is not None else "action_page"
        return ROWS.decode_all(self.db.query(f"job_status.{name}", params))
