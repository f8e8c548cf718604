"""Reading ``queue_history``: the audit trail of one job, of a queue, of a customer."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from projections.queries import ReadDatabase, as_time, as_uuid


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


def _action(row: tuple[Any, ...]) -> QueueAction:
    position, job_id, customer_id, queue, action, attempt, actor, reason, detail, at = row
    recorded_at = as_time(at)
    assert recorded_at is not None
    return QueueAction(
        position, as_uuid(job_id), customer_id, queue, action, attempt, actor, reason,
        msgspec.json.decode(detail) if detail else None, recorded_at,
    )


class QueueHistoryQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def for_job(self, job_id: UUID) -> list[QueueAction]:
        """Every queue action of the job, in log order."""
        return [_action(r) for r in self.db.query("queue_history.for_job", {"job_id": job_id})]

    def recent(
        self, *, queue: str | None = None, customer_id: str | None = None, limit: int = 100
    ) -> list[QueueAction]:
        """The latest actions (newest first), optionally of one queue and customer."""
        rows = self.db.query(
            "queue_history.recent", {"queue": queue, "customer_id": customer_id, "limit": limit}
        )
        return [_action(r) for r in rows]
