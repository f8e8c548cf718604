"""On PostgreSQL an archive leaves its deleted rows to autovacuum (ADR 111): migration
0045 lowers eventsourcing's threshold (100 million dead rows) on the events and
snapshots tables, and the archive runs no VACUUM of its own; the frames read by a second
session in the archive's snapshot (off by default) make the same segment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.test_archive import archive, hot_events, seeded
from tests.support.projection_env import Backend, make_backend

RELOPTIONS = "SELECT reloptions FROM pg_class WHERE relname = %s"
VACUUMS = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s"


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = make_backend(request, tmp_path)
    yield made
    made.close()


def test_the_events_tables_are_left_to_autovacuum(backend: Backend) -> None:
    workload = seeded(backend)
    before = hot_events(backend)
    report = archive(backend, workload)
    assert report.segments
    assert hot_events(backend) < before
    url = backend.settings.database_url
    assert url is not None
    with psycopg.connect(url) as conn:
        for table in ("jobledger_events", "jobledger_snapshots"):
            options = conn.execute(RELOPTIONS, (table,)).fetchone()
            assert options is not None
            assert "autovacuum_vacuum_threshold=10000" in options[0]
            assert "autovacuum_vacuum_scale_factor=0.05" in options[0]
            assert conn.execute(VACUUMS, (table,)).fetchone() == (0,)  # no VACUUM ran


def test_two_sessions_in_one_snapshot_write_the_same_segment(
    backend: Backend, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ADR 111's second session (off by default): it imports the archive's exported
    snapshot and reads every other chunk; the segment holds every job whole."""
    from adapters.postgres import archive as postgres_archive
    from adapters.postgres import archive_frames
    from tests.integration.test_archive_audit import audit

    monkeypatch.setattr(postgres_archive, "SESSIONS", 2)
    monkeypatch.setattr(archive_frames, "CHUNK_BLOCKS", 1)
    monkeypatch.setattr("adapters.archive.segment.FRAME_EVENTS", 20)  # many frames
    workload = seeded(backend)
    report = archive(backend, workload)
    assert report.segments
    assert report.events == report.segments[0].event_count
    assert audit(backend, deep=True).ok  # every frame decoded, every archived job audited
