"""Rebuilds, verifies and audits after an archive (ADR 110).

A view is rebuilt from the newest valid checkpoint at or after the archive's horizon
(the highest position any segment holds; ADR 90's checkpoints) plus the hot log, so a
rebuild no longer folds years of history. ``rebuild --from-archive`` and ``audit --deep``
read everything instead: every segment's events merged with the hot log, in log order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from adapters.archive import segment as segments
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
    records = archived_segments(backend)
    if not records:
        return None
    horizon = max(r.last_position for r in records)

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
    """Every archived event in log order (each segment verified as it is read)."""
    frames: list[Iterable[RawRow]] = []
    for record in records:
        data = store.get(record.name)
        index = segments.verify(data, record.sha256)
        frames.extend(segments.events(data, index))
    return heapq.merge(*frames)


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
