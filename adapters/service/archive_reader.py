"""Archived jobs read back: the application's :class:`ArchivedEvents` over the archive's
index and the segment store (ADR 110), and the segment store the settings name.

Reading one job is one index lookup and one ranged read of one frame of its segment.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from adapters.archive.segment import read_frame
from adapters.archive.stores import DirectoryStore, SegmentStore
from adapters.service.backend import Backend
from adapters.service.settings import Settings
from ledger.errors import LedgerError, StoreUnavailable
from ledger.ports.archive import ArchivedJob, ArchiveTables, RawEvent

log = logging.getLogger(__name__)

FRAMES_KEPT = 64
"""Jobs' decoded rows a reader keeps (segments never change, so they never go stale)."""


def segment_store(settings: Settings) -> SegmentStore:
    """S3 at ``ARCHIVE_URL`` when set, else the ``archive`` directory of the data dir."""
    if settings.archive_url is not None:
        from adapters.archive.s3 import S3Store

        return S3Store.from_url(settings.archive_url)
    return DirectoryStore(settings.ledger_data_dir / "archive")


def segment_name(seq: int) -> str:
    return f"segment-{seq:08d}.jlseg"


class ArchiveReader:
    """Archived jobs' events, through the index in ``backend`` and segments in ``store``
    (the index session is opened on first use)."""

    def __init__(self, backend: Backend, store: SegmentStore) -> None:
        self._backend = backend
        self.store = store
        self._tables: ArchiveTables | None = None
        self._lock = threading.Lock()
        self._frames: dict[tuple[int, int, str], list[RawEvent]] = {}
        self._frames_lock = threading.Lock()

    def _index(self) -> ArchiveTables:
        with self._lock:
            if self._tables is None:
                self._tables = self._backend.archive()
            return self._tables

    def _locate(self, job_id: UUID) -> ArchivedJob | None:
        """The job's place in a segment. A session that died (a database restart) is
        discarded and the lookup runs once more on a new one (ADR 75); without this the
        reader kept its dead session and every enqueue answered 503 until a restart."""
        try:
            return self._index().locate(job_id)
        except StoreUnavailable as error:
            log.info("archive index: %s; opening a new session, trying once more", error)
            self._discard()
        return self._index().locate(job_id)

    def _discard(self) -> None:
        with self._lock:
            tables, self._tables = self._tables, None
        if tables is not None:
            with contextlib.suppress(LedgerError):
                tables.close()

    def is_archived(self, job_id: UUID) -> bool:
        return self._locate(job_id) is not None

    def _rows(self, job_id: UUID) -> list[RawEvent]:
        where = self._locate(job_id)
        if where is None:
            return []
        wanted = str(job_id)
        key = (where.segment, where.offset, wanted)
        with self._frames_lock:
            rows = self._frames.get(key)
        if rows is None:  # jobs show reads a job twice (state, history): one frame read
            frame = self.store.get_range(segment_name(where.segment), where.offset,
                                         where.length)
            rows = read_frame(frame, wanted)  # only this job's rows are decoded
            with self._frames_lock:
                self._frames[key] = rows
                while len(self._frames) > FRAMES_KEPT:
                    self._frames.pop(next(iter(self._frames)))
        return rows

    def events(self, job_id: UUID) -> Sequence[StoredEvent]:
        return [
            StoredEvent(originator_id=job_id, originator_version=version, topic=topic,
                        state=state)
            for _, _, version, topic, state in self._rows(job_id)
        ]

    def positions(self, job_id: UUID) -> Sequence[int]:
        return [row[0] for row in self._rows(job_id)]

    def close(self) -> None:
        with self._lock:
            if self._tables is not None:
                self._tables.close()
                self._tables = None
        self.store.close()
