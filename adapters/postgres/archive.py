"""The archive's tables in PostgreSQL: which jobs are archived where, the segments'
manifest, and the one transaction that moves jobs out of the hot log (ADR 110).

:meth:`PostgresArchive.record` takes the events table's EXCLUSIVE lock (the one every
append takes, so no append interleaves), checks the hash chain and that each job's
stored stream is exactly what the segment holds, deletes the jobs' events and snapshots,
and records the segment and the jobs, or changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.postgres.archive_frames import SESSIONS, import_snapshot, read_frames
from adapters.postgres.errors import translated
from adapters.postgres.store import connect
from adapters.sql.sqlfile import load_sections
from ledger.errors import StoreError
from ledger.policies.archive_due import ArchiveDue
from ledger.ports.archive import (
    ArchivedJob,
    ArchiveRaced,
    ManifestCheck,
    ManifestSummary,
    RawEvent,
    SegmentRecord,
    StreamShape,
)

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.postgres", "archive.sql"
).items()}


class PostgresArchive:
    """The archive's tables in the database at ``url`` (one session, a lock)."""

    def __init__(self, url: str) -> None:
        with translated():
            self.conn = connect(url)
        self.url = url
        self._lock = threading.Lock()

    @translated()
    def candidates(self, cut: datetime, limit: int) -> list[UUID]:
        with self._lock:
            rows = self.conn.execute(SQL["candidates"], {"cut": cut, "limit": limit})
            return [UUID(str(r[0])) for r in rows.fetchall()]

    @translated()
    def events_of(self, ids: Sequence[UUID]) -> dict[UUID, list[RawEvent]]:
        by_text: dict[str, list[RawEvent]] = {}
        with self._lock, self.conn.cursor() as cur:  # binary: bytea without hex decoding
            cur.execute(SQL["events_of"], {"ids": list(ids)}, binary=True)
            for position, originator, version, topic, state in cur.fetchall():
                by_text.setdefault(originator, []).append(
                    (position, originator, version, topic, bytes(state))
                )
        return {  # unordered from the server (no sort there): each job by version here
            UUID(job): sorted(events, key=_version) for job, events in by_text.items()
        }

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read-only snapshot for :meth:`shapes` and :meth:`copy_events` (they are
        called inside it only), so the frames copied agree with the shapes read."""
        with translated(), self._lock, self.conn.transaction():
            self.conn.execute(SQL["snapshot"])
            yield

    @translated()
    def shapes(self, ids: Sequence[UUID]) -> dict[UUID, StreamShape]:
        """Each job's hot stream: event count, lowest and highest version and position."""
        rows = self.conn.execute(SQL["shapes"], {"ids": _array(ids)}).fetchall()
        if any(row[-1] for row in rows):
            raise StoreError("an event to archive has no topic or state")
        return {UUID(job): StreamShape(*shape) for job, *shape, _ in rows}

    @translated()
    def copy_events(
        self, blocks: Sequence[Sequence[UUID]], compress: Callable[[bytes], bytes],
    ) -> list[bytes]:
        """Each block's events in position order as binary COPY output built by the
        server (no Python object per event), compressed with ``compress`` while the next
        chunk is read (``archive_frames``; with ``SESSIONS`` > 1, helper sessions in this
        snapshot share the chunks)."""
        with ExitStack() as helpers:
            sessions = [self.conn]
            if SESSIONS > 1:
                snapshot = str(self.conn.execute(SQL["export_snapshot"]).fetchone()[0])  # type: ignore[index]
            for _ in range(1, SESSIONS):
                sessions.append(helpers.enter_context(connect(self.url, autocommit=False)))
                import_snapshot(sessions[-1], snapshot, SQL["snapshot"])
            return read_frames(sessions, SQL["frames"], blocks, compress)

    @translated()
    def head(self) -> int:
        with self._lock:
            return int(self.conn.execute(SQL["head"]).fetchone()[0])  # type: ignore[index]

    @translated()
    def record(
        self, segment: SegmentRecord, jobs: Sequence[ArchivedJob], versions: dict[UUID, int]
    ) -> None:
        """Move ``jobs`` out of the hot log and record ``segment``, in one transaction."""
        ids = [job.job_id for job in jobs]
        with self._lock, self.conn.transaction():
            self.conn.execute(SQL["lock_events"])
            self._check_chain(segment)
            streams = {"ids": _array(versions), "versions": _array(versions.values())}
            outside = self.conn.execute(SQL["outside_streams"], streams).fetchone()
            if outside is None or outside[0]:
                raise ArchiveRaced(f"{outside and outside[0]} job(s) changed meanwhile; "
                                   "run it again")
            deleted = self.conn.execute(SQL["delete_events"], streams).rowcount
            if deleted != sum(versions.values()):  # a job lost events: exactly 1..n no more
                raise ArchiveRaced(f"{deleted} events deleted, the segment holds "
                                   f"{sum(versions.values())}; run it again")
            self.conn.execute(SQL["delete_snapshots"], {"ids": ids})
            self.conn.execute(SQL["insert_jobs"], {
                "ids": _array(ids), "segments": _array(j.segment for j in jobs),
                "offsets": _array(j.offset for j in jobs),
                "lengths": _array(j.length for j in jobs),
            })
            self.conn.execute(SQL["insert_segment"], _params(segment))

    def _check_chain(self, segment: SegmentRecord) -> None:
        latest = self._latest()
        expected = (latest.seq + 1, latest.sha256) if latest else (1, "")
        if (segment.seq, segment.previous_sha256) != expected:
            raise ArchiveRaced("another archive recorded a segment meanwhile; run it again")

    @translated()
    def segments(self) -> list[SegmentRecord]:
        with self._lock:
            return self._segments()

    def _segments(self) -> list[SegmentRecord]:
        rows: list[tuple[Any, ...]] = self.conn.execute(SQL["segments"]).fetchall()
        return [SegmentRecord(*row) for row in rows]

    def _latest(self) -> SegmentRecord | None:
        row = self.conn.execute(SQL["latest_segment"]).fetchone()
        return None if row is None else SegmentRecord(*row)

    @translated()
    def latest_segment(self) -> SegmentRecord | None:
        with self._lock:
            return self._latest()

    @translated()
    def summary(self) -> ManifestSummary:
        with self._lock:
            row = self.conn.execute(SQL["manifest_summary"]).fetchone()
        assert row is not None
        segments, jobs, events, size, last = (int(v) for v in row[:5])
        return ManifestSummary(segments, jobs, events, size, last, row[5])

    @translated()
    def check_manifest(self) -> ManifestCheck:
        with self._lock:
            links = self.conn.execute(SQL["broken_links"]).fetchall()
            orphans = self.conn.execute(SQL["orphans"]).fetchone()
        return ManifestCheck([(int(a), b, c, d) for a, b, c, d in links],
                             int(orphans[0]) if orphans else 0)

    @translated()
    def archived_ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(r[0] for r in self.conn.execute(SQL["archived_ids"]))

    @translated()
    def due(self, cut: datetime) -> ArchiveDue:
        with self._lock:
            row = self.conn.execute(SQL["due"], {"cut": cut}).fetchone()
        assert row is not None
        return ArchiveDue(int(row[0]), int(row[1]), row[2])

    @translated()
    def locate(self, job_id: UUID) -> ArchivedJob | None:
        with self._lock:
            row = self.conn.execute(SQL["locate"], {"id": job_id}).fetchone()
        return None if row is None else ArchivedJob(UUID(row[0]), row[1], row[2], row[3])

    @translated()
    def hot_stats(self) -> tuple[int, RawEvent | None]:
        """The hot log's event count and its oldest event."""
        with self._lock:
            count, first = self.conn.execute(SQL["hot_stats"]).fetchone()  # type: ignore[misc]
            row = self.conn.execute(SQL["event_at"], {"position": first}).fetchone()
        oldest = None if row is None else (row[0], row[1], row[2], row[3], bytes(row[4]))
        return int(count), oldest

    @translated()
    def close(self) -> None:
        self.conn.close()


def _array(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of uuids or integers: one text parameter, not a list
    psycopg dumps element by element."""
    return "{" + ",".join(map(str, values)) + "}"


def _version(event: RawEvent) -> int:
    return event[2]


def _params(segment: SegmentRecord) -> dict[str, object]:
    return {
        "seq": segment.seq, "name": segment.name, "first_position": segment.first_position,
        "last_position": segment.last_position, "job_count": segment.job_count,
        "event_count": segment.event_count, "byte_count": segment.byte_count,
        "sha256": segment.sha256, "previous_sha256": segment.previous_sha256,
        "created_at": segment.created_at,
    }
