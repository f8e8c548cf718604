"""An archive stands on a view's checkpoint taken at or after its cut instead of copying
every view again on every run (ADR 115): ``ledger serve`` archives every 5 minutes and
the views keep every job's row, so a copy per run grew with the whole history (found by
``python -m bench.archive_year``: the checkpoints' bytes grew every simulated week)."""

from __future__ import annotations

from datetime import timedelta

from adapters.service.archive import run_archive
from adapters.service.archive_reader import segment_store
from adapters.service.archive_replay import archive_start
from adapters.service.backend import backend_for
from projections.rebuild import verify
from projections.registry import VIEWS
from projections.runner import Runner
from tests.support.projection_env import Backend, Workload

DAY = timedelta(days=1)


def catch_up(backend: Backend) -> None:
    runner = Runner(backend.store(), list(VIEWS.values()))
    runner.acquire()
    runner.catch_up()
    runner.release()


def checkpoints(backend: Backend) -> dict[str, list[str]]:
    store = backend_for(backend.settings).checkpoints()
    try:
        return {name: [c.id for c in store.list(name)] for name in VIEWS}
    finally:
        store.close()


def test_an_archive_takes_checkpoints_only_when_the_newest_is_older_than_its_cut(
    backend: Backend,
) -> None:
    workload = Workload(backend.ledger())
    workload.run(40)
    catch_up(backend)
    wired, store = backend_for(backend.settings), segment_store(backend.settings)
    try:
        first_at = workload.now + 2 * DAY
        first = run_archive(wired, store, DAY, first_at)
        assert first.jobs > 0
        taken = checkpoints(backend)
        assert all(len(ids) == 1 for ids in taken.values())

        # five minutes later (ledger serve's next round): the cut is before the
        # checkpoints were taken, so they hold every job that ended before it
        again = run_archive(wired, store, DAY, first_at + timedelta(minutes=5))
        assert again.horizon == first.horizon
        assert checkpoints(backend) == taken

        # more jobs end after the checkpoints; once the cut passes them, new ones
        workload.now = first_at + timedelta(hours=1)
        workload.run(40)
        catch_up(backend)
        later = run_archive(wired, store, DAY, workload.now + 2 * DAY)
        assert later.jobs > 0
        assert later.horizon > first.horizon
        now_kept = checkpoints(backend)
        assert all(len(now_kept[v]) == 2 and now_kept[v][1] == taken[v][0] for v in VIEWS)
    finally:
        store.close()
    live, work = backend.store(), backend_for(backend.settings).open_views()
    try:  # every view still equals a rebuild from the archive's checkpoint
        for view in VIEWS.values():
            assert verify(live, work, view, start=archive_start(wired)).ok, view.name
    finally:
        work.close()
