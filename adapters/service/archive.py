"""``ledger archive``: move the events of jobs that ended before a cut into segments
(ADR 110).

One run: take the ``archive`` lock; checkpoint every view at its position (ADR 90) and
fix the horizon, the lowest position every view and every tracked part (the dispatcher)
has passed and every view's checkpoint holds; select the jobs completed or cancelled
before the cut whose every event is at or below the horizon; then, a batch of jobs at a
time: build the segment, write it to the segment store, read it back and verify it (its
SHA-256, every frame), and only then, in one database transaction, delete the jobs' events
and snapshots and record the segment and the jobs. A crash before that transaction
leaves the events in the hot log and at most an unrecorded segment file, which the next
run overwrites (same sequence number, same name); after it, a verified segment.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from adapters.archive import segment as segments
from adapters.archive.stores import SegmentStore
from adapters.service.archive_checkpoints import archive_checkpoint
from adapters.service.archive_reader import segment_name
from adapters.service.backend import Backend
from ledger.errors import LedgerError
from ledger.ports.archive import (
    ArchivedJob,
    ArchiveTables,
    CopiedEvents,
    RawEvent,
    SegmentRecord,
    StreamShape,
)
from projections.rebuild import maintenance_lock
from projections.registry import VIEWS
from projections.store import ViewStore

ARCHIVE_LOCK = "archive"
BATCH_JOBS = 20_000
"""Jobs per segment at most."""
FAULT_ENV = "LEDGER_ARCHIVE_FAULT"
"""For the crash tests: a step name (``written``, ``verified``, ``recorded``) at which the
process kills itself with SIGKILL."""

Fault = Callable[[str], None]


class ArchiveBusy(LedgerError):
    """Another archive is running; try again when it is done."""

    code = "archive_busy"


@dataclass
class ArchiveReport:
    cut: datetime
    horizon: int
    dry_run: bool
    candidates: int = 0
    jobs: int = 0
    events: int = 0
    bytes: int = 0
    skipped: int = 0
    """Candidates left hot: an event past the horizon (a view has not passed it yet) or
    the log's last event (never archived)."""
    segments: list[SegmentRecord] = field(default_factory=list)


def kill_at(step: str) -> None:
    """The fault hook of :data:`FAULT_ENV`: SIGKILL this process at the named step."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def _locked(views: ViewStore) -> Iterator[None]:
    """The archive's lock and every view's maintenance lock: a rebuild or verify folding
    the log from before the archive must not see its events disappear midway."""
    held: list[str] = []
    try:
        for name in [ARCHIVE_LOCK, *(maintenance_lock(v) for v in VIEWS)]:
            if not views.try_lock(name):
                raise ArchiveBusy(f"{name} is held (another archive, rebuild or verify); "
                                  "try again when it is done")
            held.append(name)
        yield
    finally:
        for name in held:
            views.unlock(name)


def run_archive(
    backend: Backend, store: SegmentStore, older_than: timedelta, now: datetime, *,
    dry_run: bool = False, batch_jobs: int = BATCH_JOBS, fault: Fault = kill_at,
) -> ArchiveReport:
    """Archive the jobs that ended more than ``older_than`` before ``now``."""
    views, tables = backend.open_views(), backend.archive()
    try:
        with _locked(views):
            horizon = _horizon(backend, views, now, checkpoint=not dry_run,
                               cut=now - older_than)
            report = ArchiveReport(now - older_than, horizon, dry_run)
            ids = tables.candidates(report.cut, 10_000_000)
            report.candidates = len(ids)
            for start in range(0, len(ids), batch_jobs):
                _batch(tables, store, ids[start:start + batch_jobs], report, now=now, fault=fault)
            return report
    finally:
        tables.close()
        views.close()


def _horizon(backend: Backend, views: ViewStore, now: datetime, *, checkpoint: bool,
             cut: datetime) -> int:
    """The highest position every view and tracked part has passed (and, when
    ``checkpoint``, every view's checkpoint taken at or after ``cut`` holds: ADR 115)."""
    positions = [t.position for t in views.all_tracking()]
    if checkpoint:
        store = backend.checkpoints()
        try:
            positions += [archive_checkpoint(views, store, view, now, cut).position
                          for view in VIEWS.values()]
        finally:
            store.close()
    return min(positions, default=0)


def _batch(
    tables: ArchiveTables, store: SegmentStore, ids: Sequence[UUID], report: ArchiveReport,
    *, now: datetime, fault: Fault,
) -> None:
    head = tables.head()
    latest = tables.latest_segment()
    seq, previous = (latest.seq + 1, latest.sha256) if latest else (1, "")
    if isinstance(tables, CopiedEvents):
        versions, built = _copied(tables, ids, report, head=head, seq=seq, previous=previous)
    else:
        streams = _decoded(tables, ids, report, head)
        versions = {j: len(e) for j, e in streams.items()}
        built = None if report.dry_run or not streams else segments.build(
            seq, previous, {str(j): e for j, e in streams.items()})
    if built is None:
        report.jobs += len(versions)
        report.events += sum(versions.values())
        return
    record = _write(store, built, now, fault)
    jobs = [ArchivedJob(j, seq, *built.job_frame(str(j))) for j in versions]
    tables.record(record, jobs, versions)
    fault("recorded")
    report.segments.append(record)
    report.jobs += record.job_count
    report.events += record.event_count
    report.bytes += record.byte_count


def _archivable(last_position: int, horizon: int, head: int) -> bool:
    """Every event at or below the horizon and none the log's last."""
    return last_position <= horizon and last_position < head


def _decoded(
    tables: ArchiveTables, ids: Sequence[UUID], report: ArchiveReport, head: int,
) -> dict[UUID, list[RawEvent]]:
    streams = {
        job_id: events for job_id, events in tables.events_of(ids).items()
        if _archivable(events[-1][0], report.horizon, head)
    }
    report.skipped += len(ids) - len(streams)
    return streams


def _copied(
    tables: CopiedEvents, ids: Sequence[UUID], report: ArchiveReport, *, head: int,
    seq: int, previous: str,
) -> tuple[dict[UUID, int], segments.Built | None]:
    """The jobs' event counts and their segment, each frame the database's COPY output of
    a block of jobs (no Python object per event), read in one snapshot with the shapes
    (the deleting transaction checks the streams again under the appenders' lock)."""
    with tables.snapshot():
        shapes = {j: s for j, s in tables.shapes(ids).items()
                  if _archivable(s.last_position, report.horizon, head)}
        report.skipped += len(ids) - len(shapes)
        versions = {j: s.events for j, s in shapes.items()}
        if not shapes or report.dry_run:
            return versions, None
        by_text = {str(j): j for j in shapes}
        order = ((str(j), s.first_position, s.events) for j, s in shapes.items())
        blocks = list(segments.blocked(order, segments.FRAME_EVENTS))
        frames = tables.copy_events([[by_text[j] for j in block] for block in blocks],
                                    segments.compress_frame)
    return versions, segments.assemble(seq, previous, (
        _block(block, frame, [shapes[by_text[j]] for j in block])
        for block, frame in zip(blocks, frames, strict=True)
    ))


def _block(jobs: list[str], frame: bytes, shapes: list[StreamShape]) -> segments.Block:
    return segments.Block(
        jobs, frame, sum(s.events for s in shapes), min(s.first_position for s in shapes),
        max(s.last_position for s in shapes), compressed=True,
    )


def _write(store: SegmentStore, built: segments.Built, now: datetime, fault: Fault,
           ) -> SegmentRecord:
    """Write the segment, read it back and verify it (the hash, every frame whole)."""
    index = built.index
    name = segment_name(index.seq)
    store.put(name, built.data)
    fault("written")
    segments.verify_frames(store.get(name), built.sha256)
    fault("verified")
    return SegmentRecord(
        index.seq, name, index.first_position, index.last_position, index.job_count,
        index.event_count, len(built.data), built.sha256, index.previous_sha256, now,
    )
