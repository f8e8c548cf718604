"""Rebuilds, verifies and audits after an archive (ADR 110).

A view is rebuilt from the newest valid checkpoint at or after the archive's horizon
(the highest position any segment holds; ADR 90's checkpoints) plus the hot log, so a
rebuild no longer folds years of history. ``rebuild --from-archive`` and ``audit --deep``
read everything instead: every segment's events merged with the hot log, in log order.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from typing import cast

from adapters.archive import segment as segments
from adapters.archive import stream
from adapters.archive.stores import SegmentStore
from adapters.service.backend import Backend
from ledger.errors import LedgerError
from ledger.ports.archive import SegmentRecord
from projections.checkpoints import CheckpointCorrupt, load
from projections.events import RawRow
from projections.memory import MemoryView
from projections.model import View
from projections.pages import pages
from projections.rebuild import Start
from projections.store import ViewStore

PAGE = 20_000


class NoCheckpointAfterArchive(LedgerError):
    """No valid checkpoint of the view holds the archived events."""

    code = "no_checkpoint_after_archive"

    def __init__(self, view: str, horizon: int) -> None:
        super().__init__(
            f"view {view!r} has no valid checkpoint at or after the archive's horizon "
            f"(position {horizon}); rebuild it with --from-archive"
        )


def archived_segments(backend: Backend) -> list[SegmentRecord]:
    tables = backend.archive()
    try:
        return tables.segments()
    finally:
        tables.close()


def archive_start(backend: Backend) -> Start | None:
    """Where rebuilds and verifies start: ``None`` while nothing is archived."""
    horizon = archive_horizon(backend)
    if not horizon:
        return None

    def start(view: View, upto: int) -> MemoryView:
        store = backend.checkpoints()
        try:
            for checkpoint in store.list(view.name):  # newest first
                if horizon <= checkpoint.position <= upto:
                    try:
                        return load(store, view, checkpoint)
                    except CheckpointCorrupt:
                        continue  # refused: the next older one
            raise NoCheckpointAfterArchive(view.name, horizon)
        finally:
            store.close()

    return start


def segment_rows(store: SegmentStore, records: list[SegmentRecord]) -> Iterator[RawRow]:
    """Every archived event in log order, a frame at a time (ADR 112): a segment is read
    and verified when the merge reaches its first position, a frame decoded when it
    reaches the frame's first event."""
    merged = stream.InOrder(
        stream.Source(record.first_position, functools.partial(_frames, store, record))
        for record in records
    )
    try:
        yield from merged
    except stream.FramesOutOfOrder as error:
        raise segments.SegmentCorrupt(f"a segment's frames are out of order: {error}") from None


def _frames(store: SegmentStore, record: SegmentRecord) -> Iterator[list[RawRow]]:
    data = store.get(record.name)
    return segments.events(data, segments.verify(data, record.sha256))


def whole_log(backend: Backend, store: SegmentStore, page: int = PAGE) -> Iterator[list[RawRow]]:
    """The archive's events merged with the hot log's, in pages, in log order."""
    views = backend.open_views()
    try:
        hot = (row for rows in pages(views, 0, page) for row in rows)
        merged = heapq.merge(segment_rows(store, archived_segments(backend)), hot)
        batch: list[RawRow] = []
        for row in merged:
            batch.append(row)
            if len(batch) == page:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        views.close()


def archive_options(
    backend: Backend, from_archive: bool
) -> tuple[Start | None, Iterable[list[RawRow]] | None]:
    """``rebuild``'s start and log: the whole log from the segments, or the start."""
    if from_archive:
        from adapters.service.archive_reader import segment_store
        from adapters.service.bootstrap import load_settings

        return None, whole_log(backend, segment_store(load_settings()))
    return archive_start(backend), None


class ArchiveAwareLog:
    """A :class:`ViewStore` whose log includes the archived events (ADR 110): a read
    starting below the archive's horizon merges them in, so a view as of a position
    before an archive is folded from everything that happened; other calls go to
    ``store``. The archived events are streamed (ADR 112): a read after the previous
    one's goes on where it stopped; one further back (a search by time) starts again
    from the segments that reach past its position."""

    def __init__(self, store: ViewStore, backend: Backend, segments: SegmentStore) -> None:
        self._store = store
        self._records = archived_segments(backend)
        self._horizon = max((r.last_position for r in self._records), default=0)
        self._segments = segments
        self._cursor: _Cursor | None = None
        self._passed = 0
        """The archived rows at or before this position are gone from the cursor."""

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def read_events(self, after: int, limit: int, upto: int | None = None) -> list[RawRow]:
        hot = self._store.read_events(after, limit, upto)
        if after >= self._horizon:
            return hot
        if self._cursor is None or after < self._passed:  # only segments past ``after``
            later = [r for r in self._records if r.last_position > after]
            self._cursor = _Cursor(segment_rows(self._segments, later))
        archived = self._cursor.take(after, limit, upto)
        page = list(itertools.islice(heapq.merge(hot, archived), limit))
        self._cursor.put_back([r for r in archived if page and r[0] > page[-1][0]])
        self._passed = max(after, page[-1][0]) if page else after
        return page


class _Cursor:
    """Archived rows in order, read on demand, with the rows read but not used kept."""

    def __init__(self, rows: Iterator[RawRow]) -> None:
        self._rows = rows
        self._kept: deque[RawRow] = deque()

    def _next(self) -> RawRow | None:
        return self._kept.popleft() if self._kept else next(self._rows, None)

    def take(self, after: int, limit: int, upto: int | None) -> list[RawRow]:
        """Up to ``limit`` rows after ``after`` and at or before ``upto`` (rows at or
        before ``after`` are dropped for good)."""
        taken: list[RawRow] = []
        while len(taken) < limit and (row := self._next()) is not None:
            if upto is not None and row[0] > upto:
                self._kept.appendleft(row)
                break
            if row[0] > after:
                taken.append(row)
        return taken

    def put_back(self, rows: list[RawRow]) -> None:
        self._kept.extendleft(reversed(rows))


def with_archive(store: ViewStore, backend: Backend, segments: SegmentStore) -> ViewStore:
    """``store`` whose log reads include archived events (as-is while nothing is archived)."""
    log_store = ArchiveAwareLog(store, backend, segments)
    return store if not log_store._records else cast(ViewStore, log_store)


def archive_horizon(backend: Backend) -> int:
    """The highest log position archived (0 while nothing is)."""
    tables = backend.archive()
    try:
        return tables.summary().last_position  # one aggregate, not every manifest row
    finally:
        tables.close()
