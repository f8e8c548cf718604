"""The ``actions`` view (ADR 100) on SQLite and PostgreSQL: one row per bulk action folded
from its events, and start-up's search for unfinished actions answered from it plus the
log after the view's position, not from the whole log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from adapters.service.actions import ActionRunner, action_filter
from adapters.service.bootstrap import utc_now
from ledger.action import ActionKind
from ledger.application import Result
from ledger.commands import AnyCommand, EnqueueJob
from ledger.errors import StoreUnavailable
from projections.actions import ACTIONS
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from projections.store import LIVE
from tests.support.projection_env import Backend


class CountingRecorder:
    """The ledger's recorder, noting where each notification read starts."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.starts: list[int] = []

    def select_notifications(self, start: int, limit: int, **options: Any) -> Any:
        self.starts.append(start)
        return self.recorder.select_notifications(start, limit, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recorder, name)


def failing(commands: Sequence[AnyCommand], now: datetime) -> list[Result]:
    raise StoreUnavailable("the database went away")


def test_the_view_folds_actions_and_start_up_reads_only_the_logs_tail(
    backend: Backend,
) -> None:
    container = backend.ledger()
    ledger, store = container.ledger, backend.store()
    ledger.execute_batch(
        [EnqueueJob(customer_id="acme", queue="emails") for _ in range(25)], utc_now()
    )

    def read(query: Any) -> Any:
        catch_up_unfed(store, [VIEWS["job_status"]])
        return query(store)

    runner = ActionRunner(ledger, read, utc_now, batch_size=10)
    cancel = action_filter(ActionKind.CANCEL, {"queue": "emails"})
    killed = runner.start(ActionKind.CANCEL, cancel, "cli:ops", "bad template")
    runner.run(killed.id, should_stop=lambda: True)  # one batch, then as if killed
    finished = runner.start(ActionKind.CANCEL, action_filter(
        ActionKind.CANCEL, {"queue": "nothing"}), "api:key:k1:staff", None)
    runner.run(finished.id)
    broken = ActionRunner(ledger, read, utc_now, batch_size=10, execute=failing)
    interrupted = broken.start(ActionKind.CANCEL, cancel, "cli:ops", None)
    with pytest.raises(StoreUnavailable):
        broken.run(interrupted.id)

    catch_up_unfed(store, [VIEWS["actions"]])
    rows = {UUID(str(r[0])): r for r in store.rows(ACTIONS, LIVE)}
    names = ACTIONS.names
    shown = {i: dict(zip(names, rows[i], strict=True)) for i in rows}
    assert [(shown[i]["state"], shown[i]["done"], shown[i]["total"])
            for i in (killed.id, finished.id, interrupted.id)] == [
        ("running", 10, 25), ("finished", 0, 0), ("interrupted", 0, 25)]
    assert (shown[killed.id]["actor"], shown[killed.id]["reason"]) == ("cli:ops", "bad template")
    assert shown[finished.id]["finished_at"] is not None
    assert "database went away" in shown[interrupted.id]["error"]

    position = store.tracking("actions").position
    later = runner.start(ActionKind.CANCEL, cancel, "cli:ops", None)  # after the view's position
    runner.run(killed.id)  # finished after the view's position
    recorder = CountingRecorder(ledger.recorder)
    ledger.recorder = recorder  # type: ignore[assignment]
    try:
        found = ActionRunner(ledger, lambda query: query(store), utc_now).unfinished()
    finally:
        ledger.recorder = recorder.recorder
    assert found == [interrupted.id, later.id]
    assert recorder.starts == [position + 1]  # the log after the view, not from its start
