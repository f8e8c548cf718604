"""The archive's summary for ``/health`` and ``/metrics`` (ADR 110): segments, archived
jobs, events and bytes from the manifest, and the hot log's span (its oldest position and
its head; the span bounds the hot events from above without counting them)."""

from __future__ import annotations

import msgspec

from projections.queries import ReadDatabase


class ArchiveSummary(msgspec.Struct, frozen=True):
    segments: int = 0
    archived_jobs: int = 0
    archived_events: int = 0
    archive_bytes: int = 0
    oldest_hot_position: int = 0
    head: int = 0


class ArchiveQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def summary(self) -> ArchiveSummary:
        (row,) = self.db.query("archive.summary", {})
        return ArchiveSummary(**{k: int(v or 0) for k, v in row.items()})
