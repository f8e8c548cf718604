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
from adapters.service.archive_reader import segment_name
from adapters.service.backend import Backend
from ledger.errors import LedgerError
from ledger.ports.archive import ArchivedJob, ArchiveTables, RawEvent, SegmentRecord
from projections.checkpoints import take
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
            horizon = _horizon(backend, views, now, checkpoint=not dry_run)
            report = ArchiveReport(now - older_than, horizon, dry_run)
            ids = tables.candidates(report.cut, 10_000_000)
            report.candidates = len(ids)
            for start in range(0, len(ids), batch_jobs):
                _batch(tables, store, ids[start:start + batch_jobs], report, now=now, fault=fault)
            return report
    finally:
        tables.close()
        views.close()


def _horizon(backend: Backend, views: ViewStore, now: datetime, *, checkpoint: bool) -> int:
    """The highest position every view and tracked part has passed (and, when
    ``checkpoint``, every view's new checkpoint holds)."""
    positions = [t.position for t in views.all_tracking()]
    if checkpoint:
        store = backend.checkpoints()
        try:
            positions += [take(views, store, view, now).position for view in VIEWS.values()]
        finally:
            store.close()
    return min(positions, default=0)


def _batch(
    tables: ArchiveTables, store: SegmentStore, ids: Sequence[UUID], report: ArchiveReport,
    *, now: datetime, fault: Fault,
) -> None:
    head = tables.head()
    streams = {
        job_id: events for job_id, events in tables.events_of(ids).items()
        if events[-1][0] <= report.horizon and all(e[0] < head for e in events)
    }
    report.skipped += len(ids) - len(streams)
    if not streams or report.dry_run:
        report.jobs += len(streams)
        report.events += sum(len(e) for e in streams.values())
        return
    record, jobs = _write(tables, store, streams, now, fault)
    tables.record(record, jobs, {j: len(e) for j, e in streams.items()})
    fault("recorded")
    report.segments.append(record)
    report.jobs += record.job_count
    report.events += record.event_count
    report.bytes += record.byte_count


def _write(
    tables: ArchiveTables, store: SegmentStore, streams: dict[UUID, list[RawEvent]],
    now: datetime, fault: Fault,
) -> tuple[SegmentRecord, list[ArchivedJob]]:
    """Build, write, re-read and verify the next segment of the chain."""
    latest = tables.segments()[-1:]
    seq, previous = (latest[0].seq + 1, latest[0].sha256) if latest else (1, "")
    built = segments.build(seq, previous, {str(j): e for j, e in streams.items()})
    name = segment_name(seq)
    store.put(name, built.data)
    fault("written")
    index = segments.verify(store.get(name), built.sha256, deep=True)
    fault("verified")
    record = SegmentRecord(
        seq, name, index.first_position, index.last_position, index.job_count,
        index.event_count, len(built.data), built.sha256, previous, now,
    )
    jobs = [ArchivedJob(j, seq, *built.job_frame(str(j))) for j in streams]
    return record, jobs
