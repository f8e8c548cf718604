"""Bulk actions (ADR 100) on SQLite and PostgreSQL: selected by filter from job_status in
id order, executed in batches of 1,000 with progress recorded after each, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from adapters.service.actions import ActionRunner, action_filter
from adapters.service.bootstrap import utc_now
from ledger.action import Action, ActionFinished, ActionKind, ActionState, InvalidFilter
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, EnqueueJob, RecordQueueDeadLetter
from ledger.errors import StoreError
from ledger.job import Job
from ledger.status import Status
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from projections.store import ViewStore
from tests.support.log import recorded_head
from tests.support.projection_env import Backend


def dead_letters(ledger: JobLedger, count: int, customer: str = "acme") -> list[UUID]:
    """``count`` jobs dead-lettered from the queue (a pending job's message gave up)."""
    made = ledger.execute_batch([EnqueueJob(customer_id=customer) for _ in range(count)],
                                utc_now())
    ids = [r.job_id for r in made if not isinstance(r, Exception)]
    ledger.execute_batch(
        [RecordQueueDeadLetter(job_id=i, message_id=f"m-{i}", receive_count=3) for i in ids],
        utc_now(),
    )
    return ids


def runner_on(ledger: JobLedger, store: ViewStore, **options: Any) -> ActionRunner:
    def read(query: Any) -> Any:
        catch_up_unfed(store, [VIEWS["job_status"]])
        return query(store)

    return ActionRunner(ledger, read, utc_now, **options)


def progressed(ledger: JobLedger, action_id: UUID) -> list[Action.Progressed]:
    return [e for e in ledger.events.get(action_id) if isinstance(e, Action.Progressed)]


def test_a_bulk_retry_of_2500_dead_letters_runs_in_3_batches(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    ids = dead_letters(ledger, 2500)
    dead_letters(ledger, 3, customer="other")
    runner = runner_on(ledger, backend.store())
    job_filter = action_filter(ActionKind.RETRY, {"customer_id": "acme"})
    preview = runner.preview(ActionKind.RETRY, job_filter)
    assert preview.count == 2500
    assert [j.job_id for j in preview.sample] == sorted(ids)[:10]
    assert recorded_head(ledger.recorder) == 2 * 2503  # a dry run appends nothing
    action = runner.start(ActionKind.RETRY, job_filter, "cli:ops", "bad deploy")
    assert action.total == 2500
    done = runner.run(action.id)
    assert (done.state, done.done, done.acted) == (ActionState.FINISHED, 2500, 2500)
    assert [(p.done, p.acted) for p in progressed(ledger, action.id)] == [
        (1000, 1000), (2000, 2000), (2500, 2500)]
    assert {ledger.get_job(i).redrives for i in ids} == {1}
    redriven = [e for e in ledger.history(ids[0]) if isinstance(e, Job.Redriven)]
    assert [(e.action_id, e.reason) for e in redriven] == [(str(action.id), "bad deploy")]
    assert runner.get(action.id).summary()["reason"] == "bad deploy"
    with pytest.raises(ActionFinished):
        runner.run(action.id)


def test_a_bulk_cancel_of_2500_jobs_runs_in_3_batches_naming_the_action(
    backend: Backend,
) -> None:
    ledger = backend.ledger().ledger
    made = ledger.execute_batch(
        [EnqueueJob(customer_id="acme", queue="emails") for _ in range(2500)]
        + [EnqueueJob(customer_id="acme", queue="reports") for _ in range(7)], utc_now())
    ids = [r.job_id for r in made[:2500] if not isinstance(r, Exception)]
    runner = runner_on(ledger, backend.store())
    job_filter = action_filter(ActionKind.CANCEL, {"queue": "emails", "status": "pending"})
    action = runner.start(ActionKind.CANCEL, job_filter, "cli:ops", "wrong template")
    done = runner.run(action.id)
    assert (done.total, done.done, done.acted) == (2500, 2500, 2500)
    assert len(progressed(ledger, action.id)) == 3
    for job_id in ids[::97]:
        (cancelled,) = [e for e in ledger.history(job_id) if isinstance(e, Job.Cancelled)]
        assert (cancelled.action_id, cancelled.actor, cancelled.reason, cancelled.by) == (
            str(action.id), "cli:ops", "wrong template", "operator")
    assert {ledger.get_job(i).status for i in ids} == {Status.CANCELLED}
    assert {ledger.get_job(r.job_id).status for r in made[2500:]  # type: ignore[union-attr]
            } == {Status.PENDING}


def test_an_interrupted_action_resumes_after_its_last_batch(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    ids = dead_letters(ledger, 2500)
    calls: list[int] = []

    def failing_after_one_batch(commands: Sequence[AnyCommand], now: datetime) -> list[Result]:
        calls.append(len(commands))
        if len(calls) > 1:
            raise StoreError("the database went away")
        return ledger.execute_batch(commands, now)

    store = backend.store()
    first = runner_on(ledger, store, execute=failing_after_one_batch)
    action = first.start(ActionKind.RETRY, action_filter(ActionKind.RETRY, {}), "cli:ops", None)
    with pytest.raises(StoreError):
        first.run(action.id)
    stopped = first.get(action.id)
    assert (stopped.state, stopped.done) == (ActionState.INTERRUPTED, 1000)
    assert "went away" in (stopped.error or "")
    # another process resumes it: the first batch is not acted on again
    resumed = runner_on(backend.ledger().ledger, store).run(action.id)
    assert (resumed.state, resumed.done, resumed.acted) == (ActionState.FINISHED, 2500, 2500)
    assert {ledger.get_job(i).redrives for i in ids} == {1}


def test_a_batch_repeated_after_a_crash_acts_on_no_job_twice(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    ids = dead_letters(ledger, 30)
    store = backend.store()
    runner = runner_on(ledger, store, batch_size=10)
    action = runner.start(ActionKind.RETRY, action_filter(ActionKind.RETRY, {}), "cli:ops", None)
    # the crash: a batch executed but its progress never recorded
    page = sorted(ids)[:10]
    runner.execute([runner_command(action, i) for i in page], utc_now())
    done = runner.run(action.id)
    # the first 10 are redriven already: they no longer match the filter (dead letters)
    assert (done.done, done.acted) == (20, 20)
    assert {ledger.get_job(i).redrives for i in ids} == {1}


def runner_command(action: Action, job_id: UUID) -> AnyCommand:
    from adapters.service.actions import command_for

    return command_for(action.kind, job_id, action.actor, action.reason, action.id)


@pytest.mark.parametrize("data", [
    {"status": "exploded"}, {"queue": "bad queue"}, {"customer_id": "a\x00b"},
    {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    {"since": "2026-01-02T00:00:00"}, {"colour": "red"}, {"error_contains": ""},
])
def test_bad_filters_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilter):
        action_filter(ActionKind.CANCEL, data)


def test_retry_is_of_dead_letters_only() -> None:
    with pytest.raises(InvalidFilter, match="dead-lettered"):
        action_filter(ActionKind.RETRY, {"status": "pending"})
