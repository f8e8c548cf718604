"""Reading the rate-limit counters: per subject and minute, and totals since a time."""

from __future__ import annotations

from datetime import datetime

import msgspec

from projections.queries import ReadDatabase, RowShape
from projections.rate_limits import RATE_LIMIT_COUNTERS


class RateWindow(msgspec.Struct, frozen=True):
    subject: str
    window_start: datetime
    enqueued: int
    admitted: int
    refused: int


ROWS = RowShape(RATE_LIMIT_COUNTERS, RateWindow)


class RateTotals(msgspec.Struct, frozen=True):
    subject: str
    enqueued: int
    admitted: int
    refused: int


class RateLimitQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def for_subject(self, subject: str, since: datetime) -> list[RateWindow]:
        rows = self.db.query("rate_limits.for_subject", {"subject": subject, "since": since})
        return ROWS.decode_all(rows)

    def totals(self, since: datetime) -> list[RateTotals]:
        rows = self.db.query("rate_limits.totals", {"since": since})
        return [
            RateTotals(row["subject"], int(row["enqueued"]), int(row["admitted"]),
                       int(row["refused"]))
            for row in rows
        ]
