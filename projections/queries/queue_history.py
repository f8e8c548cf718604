"""Reading ``queue_history``: the audit trail of one job, of a queue, of a customer."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from projections.queries import ReadDatabase, RowShape
from projections.queue_history import QUEUE_HISTORY


class QueueAction(msgspec.Struct, frozen=True):
    position: int
    job_id: UUID
    customer_id: str
    queue: str
    action: str
    attempt: int
    actor: str
    reason: str | None
    detail: dict[str, Any] | None
    recorded_at: datetime


ROWS = RowShape(QUEUE_HISTORY, QueueAction, json=("detail",))


class QueueHistoryQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def for_job(self, job_id: UUID) -> list[QueueAction]:
        """Every queue action of the job, in log order."""
        return ROWS.decode_all(self.db.query("queue_history.for_job", {"job_id": job_id}))

    def recent(
        self, *, queue: str | None = None, customer_id: str | None = None, limit: int = 100
    ) -> list[QueueAction]:
        """The latest actions (newest first), optionally of one queue and customer."""
        rows = self.db.query(
            "queue_history.recent", {"queue": queue, "customer_id": customer_id, "limit": limit}
        )
        return ROWS.decode_all(rows)
