"""Reading the rate-limit counters: per subject and minute, and totals since a time."""

from __future__ import annotations

from datetime import datetime

import msgspec

from projections.queries import ReadDatabase, as_time


class RateWindow(msgspec.Struct, frozen=True):
    subject: str
    window_start: datetime
    enqueued: int
    admitted: int
    refused: int


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
        out = []
        for subject_, start, enqueued, admitted, refused in rows:
            at = as_time(start)
            assert at is not None
            out.append(RateWindow(subject_, at, int(enqueued), int(admitted), int(refused)))
        return out

    def totals(self, since: datetime) -> list[RateTotals]:
        rows = self.db.query("rate_limits.totals", {"since": since})
        return [RateTotals(s, int(e), int(a), int(r)) for s, e, a, r in rows]
