"""Reading ``dead_letter_alerts``: the alert outbox (pending alerts) and its counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from projections.queries import ReadDatabase, as_time, as_uuid


class DeadLetterAlert(msgspec.Struct, frozen=True):
    """One dead letter and the state of its alert."""

    job_id: UUID
    dead_letter_version: int
    attempt: int
    attempts_used: int
    reason: str
    last_error: str | None
    source: str
    message_id: str | None
    dead_lettered_at: datetime
    alert_status: str
    alerted_at: datetime | None
    alert_detail: str | None


def _alert(row: tuple[Any, ...]) -> DeadLetterAlert:
    (job_id, version, attempt, used, reason, last_error, source, message_id, at, status,
     alerted_at, detail) = row
    when = as_time(at)
    assert when is not None
    return DeadLetterAlert(
        as_uuid(job_id), int(version), int(attempt), int(used), reason, last_error, source,
        message_id, when, status, as_time(alerted_at), detail,
    )


class DeadLetterAlertQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def pending(self, limit: int = 500) -> list[DeadLetterAlert]:
        """Dead letters whose alert is not recorded yet, oldest first."""
        rows = self.db.query("dead_letter_alerts.pending", {"limit": limit})
        return [_alert(r) for r in rows]

    def for_job(self, job_id: UUID) -> list[DeadLetterAlert]:
        rows = self.db.query("dead_letter_alerts.for_job", {"job_id": job_id})
        return [_alert(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Dead letters by alert status: pending, sent, failed."""
        counts = {"pending": 0, "sent": 0, "failed": 0}
        for status, count in self.db.query("dead_letter_alerts.counts", {}):
            counts[str(status)] = int(count)
        return counts
