"""The archive's tables in the SQLite file: which jobs are archived where, the segments'
manifest, and the one transaction that moves jobs out of the hot log (ADR 110).

:meth:`SqliteArchive.record` runs under SQLite's write lock (``BEGIN IMMEDIATE``: no
append can interleave); it checks the hash chain and that each job's stored stream is
exactly what the segment holds, deletes the jobs' events and snapshots, and records the
segment and the jobs, or changes nothing. The log's last event is never deleted: its
rowid would be handed out again and every reader past it would skip the new event.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

from adapters.sql.sqlfile import load_sections
from adapters.sqlite.errors import translated
from adapters.sqlite.store import connect
from ledger.policies.archive_due import ArchiveDue
from ledger.ports.archive import (
    ArchivedJob,
    ArchiveRaced,
    ManifestCheck,
    ManifestSummary,
    RawEvent,
    SegmentRecord,
)

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.sqlite", "archive.sql"
).items()}



class SqliteArchive:
    """The archive's tables in the SQLite file at ``path`` (one connection, a lock)."""

    def __init__(self, path: Path) -> None:
        with translated():
            self.conn = connect(path)
        self._lock = threading.Lock()

    @translated()
    def candidates(self, cut: datetime, limit: int) -> list[UUID]:
        params = {"cut": cut.isoformat(timespec="microseconds"), "limit": limit}
        with self._lock:
            return [UUID(r[0]) for r in self.conn.execute(SQL["candidates"], params)]

    @translated()
    def events_of(self, ids: Sequence[UUID]) -> dict[UUID, list[RawEvent]]:
        found: dict[UUID, list[RawEvent]] = {}
        with self._lock:
            for job_id in ids:
                rows = self.conn.execute(SQL["events_of"], {"id": job_id.hex}).fetchall()
                if rows:
                    found[job_id] = [(p, str(job_id), v, t, bytes(s)) for p, _, v, t, s in rows]
        return found

    @translated()
    def head(self) -> int:
        with self._lock:
            return int(self.conn.execute(SQL["head"]).fetchone()[0])

    @translated()
    def record(
        self, segment: SegmentRecord, jobs: Sequence[ArchivedJob], versions: dict[UUID, int]
    ) -> None:
        """Move ``jobs`` out of the hot log and record ``segment``, in one transaction."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self._check(segment, versions)
                for job in jobs:
                    self.conn.execute(SQL["delete_events"], {"id": job.job_id.hex})
                    self.conn.execute(SQL["delete_snapshots"], {"id": job.job_id.hex})
                    self.conn.execute(SQL["insert_job"], {
                        "job_id": str(job.job_id), "segment": job.segment,
                        "offset": job.offset, "length": job.length,
                    })
                self.conn.execute(SQL["insert_segment"], _params(segment))
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _check(self, segment: SegmentRecord, versions: dict[UUID, int]) -> None:
        latest = self._latest()
        expected = (latest.seq + 1, latest.sha256) if latest else (1, "")
        if (segment.seq, segment.previous_sha256) != expected:
            raise ArchiveRaced("another archive recorded a segment meanwhile; run it again")
        if int(self.conn.execute(SQL["head"]).fetchone()[0]) <= segment.last_position:
            raise ArchiveRaced("the segment would hold the log's last event; run it later")
        for job_id, version in versions.items():
            count, low, high = self.conn.execute(
                SQL["stream_shape"], {"id": job_id.hex}
            ).fetchone()
            if (count, low, high) != (version, 1, version):
                raise ArchiveRaced(f"job {job_id} changed meanwhile; run it again")

    @translated()
    def segments(self) -> list[SegmentRecord]:
        with self._lock:
            return self._segments()

    def _segments(self) -> list[SegmentRecord]:
        return [
            _segment(row)
            for row in self.conn.execute(SQL["segments"]).fetchall()
        ]

    def _latest(self) -> SegmentRecord | None:
        row = self.conn.execute(SQL["latest_segment"]).fetchone()
        return None if row is None else _segment(row)

    @translated()
    def latest_segment(self) -> SegmentRecord | None:
        with self._lock:
            return self._latest()

    @translated()
    def summary(self) -> ManifestSummary:
        with self._lock:
            row = self.conn.execute(SQL["manifest_summary"]).fetchone()
        segments, jobs, events, size, last = (int(v) for v in row[:5])
        return ManifestSummary(segments, jobs, events, size, last, row[5])

    @translated()
    def check_manifest(self) -> ManifestCheck:
        with self._lock:
            links = self.conn.execute(SQL["broken_links"]).fetchall()
            orphans = self.conn.execute(SQL["orphans"]).fetchone()
        return ManifestCheck([(int(a), b, c, d) for a, b, c, d in links], int(orphans[0]))

    @translated()
    def archived_ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(str(r[0]) for r in self.conn.execute(SQL["archived_ids"]))

    @translated()
    def due(self, cut: datetime) -> ArchiveDue:
        params = {"cut": cut.isoformat(timespec="microseconds")}
        with self._lock:
            count, events, oldest = self.conn.execute(SQL["due"], params).fetchone()
        return ArchiveDue(int(count), int(events),
                          None if oldest is None else datetime.fromisoformat(oldest))

    @translated()
    def locate(self, job_id: UUID) -> ArchivedJob | None:
        with self._lock:
            row = self.conn.execute(SQL["locate"], {"id": str(job_id)}).fetchone()
        return None if row is None else ArchivedJob(UUID(row[0]), row[1], row[2], row[3])

    @translated()
    def hot_stats(self) -> tuple[int, RawEvent | None]:
        """The hot log's event count and its oldest event."""
        with self._lock:
            count, first = self.conn.execute(SQL["hot_stats"]).fetchone()
            row = self.conn.execute(SQL["event_at"], {"position": first}).fetchone()
        oldest = None if row is None else (row[0], str(UUID(row[1])), row[2], row[3], row[4])
        return int(count), oldest

    @translated()
    def close(self) -> None:
        self.conn.close()


def _segment(row: tuple[object, ...]) -> SegmentRecord:
    seq, name, first, last, jobs, events, size, sha256, previous, created = row
    return SegmentRecord(
        int(str(seq)), str(name), int(str(first)), int(str(last)), int(str(jobs)),
        int(str(events)), int(str(size)), str(sha256), str(previous),
        datetime.fromisoformat(str(created)),
    )


def _params(segment: SegmentRecord) -> dict[str, object]:
    return {
        "seq": segment.seq, "name": segment.name, "first_position": segment.first_position,
        "last_position": segment.last_position, "job_count": segment.job_count,
        "event_count": segment.event_count, "byte_count": segment.byte_count,
        "sha256": segment.sha256, "previous_sha256": segment.previous_sha256,
        "created_at": segment.created_at.isoformat(),
    }
