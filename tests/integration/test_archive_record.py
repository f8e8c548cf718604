"""The archive's one deleting transaction refuses a stream that is not what the segment
holds (ADR 110, checked more cheaply on PostgreSQL by ADR 111): a job with an event past
the segment's versions, or fewer events than it holds, raises archive_raced and nothing
changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.service.backend import backend_for
from ledger.ports.archive import ArchivedJob, ArchiveRaced, SegmentRecord
from tests.integration.test_archive import hot_events, seeded
from tests.support.projection_env import Backend


def ended(backend: Backend, cut: datetime, count: int) -> dict[UUID, int]:
    """``count`` jobs ended before ``cut`` and their event counts."""
    tables = backend_for(backend.settings).archive()
    try:
        ids = tables.candidates(cut, count)
        return {j: len(events) for j, events in tables.events_of(ids).items()}
    finally:
        tables.close()


@pytest.mark.parametrize("change", [-1, 1], ids=["an event past the segment", "one fewer"])
def test_a_stream_unlike_the_segment_is_refused_and_nothing_changes(
    backend: Backend, change: int,
) -> None:
    workload = seeded(backend)
    versions = ended(backend, workload.now + timedelta(days=2), 3)
    assert len(versions) == 3
    wrong = next(iter(versions))
    versions[wrong] += change
    before = hot_events(backend)
    record = SegmentRecord(1, "00000001.seg", 1, 2, 3, sum(versions.values()), 10, "ab", "",
                           datetime(2026, 1, 1, tzinfo=UTC))
    tables = backend_for(backend.settings).archive()
    try:
        with pytest.raises(ArchiveRaced):
            tables.record(record, [ArchivedJob(j, 1, 0, 10) for j in versions], versions)
        assert tables.segments() == []
        assert all(tables.locate(j) is None for j in versions)
    finally:
        tables.close()
    assert hot_events(backend) == before
