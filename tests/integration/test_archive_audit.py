"""After an archive (ADR 110): views verify and rebuild from the checkpoint at the cut and
the hot log, or from the segments and the hot log (--from-archive); the audit checks the
segment chain and the manifest, and --deep re-reads every segment and audits the archived
jobs again; a damaged segment or a broken chain fails it."""

from __future__ import annotations

from datetime import timedelta

from adapters.service.archive_audit import archive_audit
from adapters.service.archive_reader import segment_store
from adapters.service.archive_replay import archive_start, whole_log
from adapters.service.audit import AuditReport, check_views, run_audit
from adapters.service.backend import backend_for
from projections.rebuild import rebuild
from projections.registry import VIEWS
from projections.store import LIVE
from tests.integration.test_archive import archive, seeded
from tests.support.projection_env import Backend
from tests.support.projection_events import T0

ALL = list(VIEWS.values())


def audit(backend: Backend, *, deep: bool) -> AuditReport:
    store = segment_store(backend.settings)
    db = backend_for(backend.settings)
    return run_audit(
        db.open_views, ALL, now=lambda: T0 + timedelta(days=1),
        alert_grace=timedelta(days=9999), check_dispatch=False,
        archive=archive_audit(db, store, deep=deep),
    )


def test_views_verify_rebuild_and_audit_after_an_archive(backend: Backend) -> None:
    workload = seeded(backend)
    report = archive(backend, workload)
    assert report.jobs > 0
    db = backend_for(backend.settings)
    checks = check_views(db.open_views, ALL, start=archive_start(db))
    assert all(c.equal for c in checks), checks
    # without the checkpoint start, the hot log alone no longer makes the views
    assert not all(c.equal for c in check_views(db.open_views, ALL))
    store = backend.store()
    for view in ALL:
        live = {t.name: list(store.rows(t, LIVE)) for t in view.tables}
        rebuild(store, view, start=archive_start(db))
        assert {t.name: list(store.rows(t, LIVE)) for t in view.tables} == live
        rebuild(store, view, log=whole_log(db, segment_store(backend.settings)))
        assert {t.name: list(store.rows(t, LIVE)) for t in view.tables} == live
    shallow, deep = audit(backend, deep=False), audit(backend, deep=True)
    assert shallow.ok, shallow.violations
    assert deep.ok, deep.violations
    assert deep.jobs > shallow.jobs


def test_a_damaged_segment_fails_the_deep_audit(backend: Backend) -> None:
    workload = seeded(backend)
    record = archive(backend, workload).segments[0]
    path = backend.settings.ledger_data_dir / "archive" / record.name
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    deep = audit(backend, deep=True)
    assert not deep.ok
    assert "archive_segment" in {v.invariant for v in deep.violations}
    assert audit(backend, deep=False).ok  # the trailer still agrees: only --deep hashes


def test_a_view_as_of_a_moment_before_the_archive_is_unchanged(backend: Backend) -> None:
    from adapters.service.archive_replay import with_archive
    from projections.asof import view_as_of

    workload = seeded(backend)
    db = backend_for(backend.settings)
    store = backend.store()
    positions = [store.head() // 4, store.head() // 2, store.head() - 1]
    checkpoints = db.checkpoints()
    view = VIEWS["job_status"]

    def as_of(reader: object) -> list[object]:
        return [view_as_of(reader, checkpoints, view, p).memory.table("job_status")  # type: ignore[arg-type]
                for p in positions]

    before = as_of(store)
    archive(backend, workload)
    segments = segment_store(backend.settings)
    assert as_of(with_archive(store, db, segments)) == before
    assert as_of(store) != before  # the hot log alone has lost the archived jobs' events
    checkpoints.close()
