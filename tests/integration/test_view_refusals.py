"""A view whose rows the database refuses stops loudly at that event (issue 13).

The poison events are written straight into the log (bypassing the ledger's validation at
the boundary), as an old release or a bug could have left them: on PostgreSQL an error
text with NUL (``invalid byte sequence for encoding "UTF8": 0x00``), on both stores an
integer too large for the view's column.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import msgspec
import pytest

from adapters.service.audit import run_audit
from adapters.service.view_alerts import ViewAlerts
from adapters.slack.webhook import LoggedAlerts
from projections.rebuild import verify
from projections.registry import VIEWS, get_view
from projections.runner import Runner
from projections.store import ViewStore
from tests.integration.test_projections_contract import execute
from tests.support.projection_env import Backend, Workload, make_backend
from tests.support.projection_events import T0

ALL = list(VIEWS.values())
STAMP = {"_type_": "datetime_iso", "_data_": "2026-03-02T09:00:00+00:00"}

POISONS = [
    pytest.param("postgres", "nul", marks=pytest.mark.postgres, id="postgres-nul-error-text"),
    pytest.param("postgres", "huge", marks=pytest.mark.postgres, id="postgres-huge-integer"),
    pytest.param("sqlite", "huge", id="sqlite-huge-integer"),
]


def insert(store: ViewStore, originator: str, version: int, topic: str, **body: Any) -> int:
    table = "jobledger_events" if store.backend == "postgres" else "stored_events"
    state = msgspec.json.encode({"timestamp": STAMP, **body})
    execute(store, f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                   "VALUES (%s, %s, %s, %s)", (originator, version, topic, state))
    return store.head()


def poison(store: ViewStore, kind: str) -> tuple[int, str]:
    """Append a job whose events a view cannot store; returns (the poison's position, the
    job id)."""
    job = uuid4()
    originator = str(job) if store.backend == "postgres" else job.hex
    if kind == "huge":
        position = insert(store, originator, 1, "ledger.job:Job.Enqueued",
                          customer_id="acme", queue="default", max_attempts=2**70)
        return position, str(job)
    insert(store, originator, 1, "ledger.job:Job.Enqueued",
           customer_id="acme", queue="default", max_attempts=3)
    insert(store, originator, 2, "ledger.job:Job.Claimed", attempt=1, worker_id="w")
    position = insert(store, originator, 3, "ledger.job:Job.Failed", attempt=1,
                      worker_id="w", error="boom\u0000x")
    return position, str(job)


class _Param:
    def __init__(self, name: str) -> None:
        self.param = name
        self._request: pytest.FixtureRequest | None = None

    def getfixturevalue(self, name: str) -> Any:
        assert self._request is not None
        return self._request.getfixturevalue(name)


def _backend(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> Backend:
    param = _Param(name)
    param._request = request
    return make_backend(param, tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "kind"), POISONS)
def test_a_view_whose_rows_the_database_refuses_stops_at_that_event_and_others_go_on(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, kind: str
) -> None:
    backend = _backend(request, tmp_path, name)
    try:
        workload = Workload(backend.ledger())
        workload.run(5)
        store = backend.store()
        position, job = poison(store, kind)
        workload.run(3)
        head = store.head()
        runner = Runner(store, ALL, page_size=1000)  # the poison is mid-page
        assert runner.acquire() == list(VIEWS)
        runner.catch_up()  # today: the store's error ends the runner's session
        assert "job_status" in runner.failures
        assert "rate_limits" not in runner.failures
        for view, message in runner.failures.items():
            assert f"view {view!r} stopped at event {position}" in message
            assert job in message
            assert "\x00" not in message
            tracking = store.tracking(view)
            assert tracking.position == position - 1  # every event before it is applied
            assert tracking.error == message
        for view in set(VIEWS) - set(runner.failures):
            assert store.tracking(view).position == head  # the others went on
            assert store.tracking(view).error is None
        assert runner.step() == 0  # stopped: never skipped
        runner.release()
        again = Runner(backend.store(), ALL)  # a restarted runner stops there too
        again.acquire()
        again.catch_up()
        assert set(again.failures) == set(runner.failures)
        again.release()
    finally:
        backend.close()


def _poisoned_after_catching_up(backend: Backend, kind: str) -> int:
    """Every view fed to the head of a small workload's log, then a poison appended that
    no runner has seen; its position."""
    workload = Workload(backend.ledger())
    workload.run(3)
    store = backend.store()
    runner = Runner(store, ALL)
    runner.acquire()
    runner.catch_up()
    runner.release()
    position, _ = poison(store, kind)
    return position


@pytest.mark.parametrize(("name", "kind"), POISONS)
def test_verify_fails_naming_the_view_when_a_rebuild_of_it_fails(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, kind: str
) -> None:
    backend = _backend(request, tmp_path, name)
    try:
        position = _poisoned_after_catching_up(backend, kind)
        result = verify(backend.store(), backend.store(), get_view("job_status"))
        assert result.equal  # the live view equals the log up to where it stopped ...
        assert not result.ok  # ... but a rebuild cannot pass the poison
        assert result.failure is not None
        assert f"view 'job_status' stopped at event {position}" in result.failure
        clean = verify(backend.store(), backend.store(), get_view("rate_limits"))
        assert clean.ok
        assert clean.failure is None
    finally:
        backend.close()


@pytest.mark.parametrize(("name", "kind"), POISONS)
def test_audit_fails_naming_the_view_a_rebuild_cannot_pass(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, kind: str
) -> None:
    backend = _backend(request, tmp_path, name)
    try:
        position = _poisoned_after_catching_up(backend, kind)
        report = run_audit(backend.store, ALL, now=lambda: T0 + timedelta(days=1),
                           alert_grace=timedelta(days=1), check_dispatch=False)
        assert not report.ok
        assert report.violations == []  # the log itself is fine
        failed = {v.view: v.failure for v in report.views if v.failure}
        assert "job_status" in failed
        assert "rate_limits" not in failed
        assert f"stopped at event {position}" in str(failed["job_status"])
        assert report.to_dict()["ok"] is False
    finally:
        backend.close()


@pytest.mark.parametrize(("name", "kind"), POISONS)
def test_a_stopped_view_is_alerted_once_across_restarts(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, kind: str
) -> None:
    backend = _backend(request, tmp_path, name)
    try:
        workload = Workload(backend.ledger())
        workload.run(3)
        store = backend.store()
        position, _ = poison(store, kind)
        runner = Runner(store, ALL)
        runner.acquire()
        runner.catch_up()
        runner.release()
        stopped = set(runner.failures)
        sink = LoggedAlerts()
        first = ViewAlerts(backend.store(), sink, list(VIEWS))
        assert anyio.run(first.check) == len(stopped)
        assert anyio.run(first.check) == 0
        first.store.close()  # a restart: a new session, a new sender
        assert anyio.run(ViewAlerts(backend.store(), sink, list(VIEWS)).check) == 0
        by_view = {m["text"]: m for m in sink.messages}
        assert len(by_view) == len(sink.messages) == len(stopped)
        title = f"Projection stopped: view job_status at position {position - 1}"
        assert title in by_view
        assert f"stopped at event {position}" in str(by_view[title]["blocks"])
    finally:
        backend.close()
