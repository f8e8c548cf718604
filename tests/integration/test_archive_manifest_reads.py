"""The paths that used to read every manifest row or every segment read what they need
(ADR 110, segments that do not pile up): a new segment's chain check, ``ledger archive
status``, where rebuilds start and the horizon read aggregates or the last row; the
shallow audit checks the chain in the database and reads one segment's trailer; ``--deep``
reads every segment."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from typing import Any

from adapters.archive.stores import SegmentStore
from adapters.service.archive_audit import archive_audit
from adapters.service.archive_reader import segment_store
from adapters.service.archive_replay import archive_horizon, archive_start
from adapters.service.archive_status import archive_status
from adapters.service.backend import backend_for
from tests.integration.test_archive import archive, seeded
from tests.support.projection_env import Backend


class CountingStore:
    """A segment store that counts reads by segment name."""

    def __init__(self, inner: SegmentStore) -> None:
        self.inner, self.reads = inner, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, name: str) -> bytes:
        self.reads[name] += 1
        return self.inner.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self.reads[name] += 1
        return self.inner.get_range(name, offset, length)


class CountingTables:
    """Archive tables that count the calls that read every manifest row."""

    def __init__(self, inner: Any, calls: Counter[str]) -> None:
        self.inner, self.calls = inner, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def segments(self) -> Any:
        self.calls["segments"] += 1
        return self.inner.segments()


def _counted(backend: Backend) -> tuple[Any, Counter[str]]:
    db, calls = backend_for(backend.settings), Counter[str]()
    archive_tables = db.archive
    object.__setattr__(db, "archive", lambda: CountingTables(archive_tables(), calls))
    return db, calls


def _execute(backend: Backend, statement: str) -> None:
    tables: Any = backend_for(backend.settings).archive()
    try:
        with getattr(tables.conn, "transaction", nullcontext)():
            tables.conn.execute(statement)
    finally:
        tables.close()


def test_status_start_horizon_and_a_new_segment_read_no_manifest_row_by_row(
    backend: Backend,
) -> None:
    workload = seeded(backend)
    report = archive(backend, workload, batch_jobs=7)
    assert len(report.segments) > 2
    db, calls = _counted(backend)
    status = archive_status(db)
    assert status["segments"] == len(report.segments)
    assert status["archived_events"] == sum(s.event_count for s in report.segments)
    assert status["last_segment_sha256"] == report.segments[-1].sha256
    assert archive_horizon(db) == max(s.last_position for s in report.segments)
    assert archive_start(db) is not None
    archive_audit(db, segment_store(backend.settings), deep=False)
    assert calls["segments"] == 0


def test_the_shallow_audit_reads_one_trailer_and_deep_reads_every_segment(
    backend: Backend,
) -> None:
    workload = seeded(backend)
    report = archive(backend, workload, batch_jobs=7)
    db = backend_for(backend.settings)
    shallow = CountingStore(segment_store(backend.settings))
    result = archive_audit(db, shallow, deep=False)
    assert result.violations == []
    assert shallow.reads == Counter({report.segments[-1].name: 2})  # its trailer
    assert len(result.archived) == report.jobs  # from the tombstones, in one query
    deep = CountingStore(segment_store(backend.settings))
    assert archive_audit(db, deep, deep=True).violations == []
    assert set(deep.reads) == {s.name for s in report.segments}


def test_a_broken_chain_and_a_dangling_tombstone_fail_the_shallow_audit(
    backend: Backend,
) -> None:
    workload = seeded(backend)
    assert len(archive(backend, workload, batch_jobs=7).segments) > 2
    _execute(backend, "UPDATE archive_segments SET previous_sha256 = 'forged' WHERE seq = 2")
    _execute(backend, "UPDATE archived_jobs SET segment = 999 WHERE segment = 1")
    result = archive_audit(backend_for(backend.settings), segment_store(backend.settings),
                           deep=False)
    found = {(v.job_id, v.invariant) for v in result.violations}
    assert ("archived_jobs", "archive_tombstone") in found
    assert any(code == "archive_chain" for _, code in found)
