"""Reading ``dead_letter_alerts``: the alert outbox (pending alerts) and its counts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from projections.dead_letter_alerts import DEAD_LETTER_ALERTS
from projections.queries import ReadDatabase, RowShape
from projections.queries.job_status import ROWS as JOBS
from projections.queries.job_status import JobStatus


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


ROWS = RowShape(DEAD_LETTER_ALERTS, DeadLetterAlert)


class DeadLetterAlertQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def pending(self, limit: int = 500) -> list[DeadLetterAlert]:
        """Dead letters whose alert is not recorded yet, oldest first."""
        rows = self.db.query("dead_letter_alerts.pending", {"limit": limit})
        return ROWS.decode_all(rows)

    def for_job(self, job_id: UUID) -> list[DeadLetterAlert]:
        rows = self.db.query("dead_letter_alerts.for_job", {"job_id": job_id})
        return ROWS.decode_all(rows)

    def of_oldest_dead_letters(self, limit: int) -> list[tuple[JobStatus, str]]:
        """The ``limit`` oldest dead letters, each with the last status of its alert
        (``none`` when it has no alert row), in one query."""
        rows = self.db.query("dead_letter_alerts.of_oldest_dead_letters", {"limit": limit})
        return [(JOBS.decode(row), str(row["alert_status"] or "none")) for row in rows]

    def counts(self) -> dict[str, int]:
        """Dead letters by alert status: pending, sent, failed."""
        counts = {"pending": 0, "sent": 0, "failed": 0}
        for row in self.db.query("dead_letter_alerts.counts", {}):
            counts[str(row["alert_status"])] = int(row["count"])
        return counts
