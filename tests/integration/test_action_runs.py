"""Bulk actions in the background of the serving process (ADR 100) on SQLite and
PostgreSQL: the API resumes at start-up every action the log shows started and not
finished, a stop leaves the running one resumable after its batch, and two runners of one
action act on each job once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from adapters.http.wiring import build_http
from adapters.service.action_runs import BackgroundActions
from adapters.service.actions import ActionRunner, action_filter
from adapters.service.bootstrap import utc_now
from ledger.access import Role, new_key
from ledger.action import ActionKind, ActionState
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, EnqueueJob
from ledger.job import Job
from ledger.status import Status
from tests.integration.test_bulk_actions import runner_on
from tests.support.http import projections_running, serve_in_thread, wait_for
from tests.support.projection_env import Backend


def pending(ledger: JobLedger, count: int, queue: str = "emails") -> list[UUID]:
    made = ledger.execute_batch(
        [EnqueueJob(customer_id="acme", queue=queue) for _ in range(count)], utc_now()
    )
    return [r.job_id for r in made if not isinstance(r, Exception)]


def cancels(ledger: JobLedger, job_id: UUID) -> int:
    return sum(isinstance(e, Job.Cancelled) for e in ledger.history(job_id))


def test_the_api_resumes_unfinished_actions_when_it_starts(backend: Backend) -> None:
    container = backend.ledger()
    ledger = container.ledger
    ids = pending(ledger, 25)
    runner = runner_on(ledger, backend.store(), batch_size=10)
    cancel = action_filter(ActionKind.CANCEL, {"queue": "emails"})
    killed = runner.start(ActionKind.CANCEL, cancel, "cli:ops", "bad template")
    stopped_after_one = runner.run(killed.id, should_stop=lambda: True)  # as if killed
    assert (stopped_after_one.state, stopped_after_one.done) == (ActionState.RUNNING, 10)
    never_ran = runner.start(ActionKind.CANCEL, cancel, "cli:ops", None)
    finished = runner.start(ActionKind.CANCEL, action_filter(ActionKind.CANCEL, {
        "queue": "nothing"}), "cli:ops", None)
    runner.run(finished.id)
    assert runner.unfinished() == [killed.id, never_ran.id]

    with projections_running(container), serve_in_thread(build_http(container)):
        wait_for(lambda: runner.get(killed.id).state is ActionState.FINISHED, timeout=30)
        wait_for(lambda: runner.get(never_ran.id).state is ActionState.FINISHED, timeout=30)
    assert runner.unfinished() == []
    assert runner.get(killed.id).done == 25
    assert {ledger.get_job(i).status for i in ids} == {Status.CANCELLED}
    assert {cancels(ledger, i) for i in ids} == {1}


def test_a_stop_leaves_the_action_running_after_its_batch(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    pending(ledger, 30)
    gate, entered = threading.Event(), threading.Event()

    def held(commands: Sequence[AnyCommand], now: datetime) -> list[Result]:
        entered.set()
        gate.wait(10)
        return ledger.execute_batch(commands, now)

    runner = runner_on(ledger, backend.store(), batch_size=10, execute=held)
    action = runner.start(ActionKind.CANCEL, action_filter(ActionKind.CANCEL, {
        "queue": "emails"}), "cli:ops", None)
    background = BackgroundActions(runner)
    background.submit(action.id)
    assert entered.wait(10)
    background.submit(action.id)  # already running here: not a second run
    threading.Timer(0.2, gate.set).start()
    background.close()
    stopped = runner.get(action.id)
    assert (stopped.state, stopped.done) == (ActionState.RUNNING, 10)
    assert not background.is_running(action.id)


def test_two_processes_resuming_one_action_act_on_each_job_once(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    ids = pending(ledger, 40)
    store = backend.store()
    first = runner_on(ledger, store, batch_size=10)
    action = first.start(ActionKind.CANCEL, action_filter(ActionKind.CANCEL, {
        "queue": "emails"}), "cli:ops", None)
    other = runner_on(backend.ledger().ledger, backend.store(), batch_size=10)
    runs = [BackgroundActions(first), BackgroundActions(other)]
    for background in runs:
        background.submit(action.id)
    wait_for(lambda: not any(b.is_running(action.id) for b in runs), timeout=30)
    for background in runs:
        background.close()
    ended = first.get(action.id)
    if ended.state is not ActionState.FINISHED:  # both stopped on a conflict: resume
        first.run(action.id)
    assert {cancels(ledger, i) for i in ids} == {1}
    assert first.get(action.id).state is ActionState.FINISHED


def test_post_actions_answers_202_and_the_run_continues_in_the_background(
    backend: Backend,
) -> None:
    container = backend.ledger()
    ids = pending(container.ledger, 1500, queue="reports")
    secret, record = new_key(Role.STAFF, None, None, utc_now())
    container.backend.key_store().add(record)
    with projections_running(container), serve_in_thread(build_http(container)) as api, \
            httpx.Client(base_url=api.base_url, timeout=30,
                         headers={"authorization": f"Bearer {secret}"}) as http:
        body: dict[str, Any] = {"kind": "cancel", "filter": {"queue": "reports"}}
        wait_for(lambda: http.post("/actions", json=body | {"dry_run": True}).json()[
            "count"] == 1500, timeout=30)
        answer = http.post("/actions", json=body)
        assert answer.status_code == 202, answer.text
        started = answer.json()
        assert (started["state"], started["total"], started["done"]) == ("running", 1500, 0)
        location = answer.headers["Location"]
        wait_for(lambda: http.get(location).json()["state"] == "finished", timeout=60)
        shown = http.get(location).json()
        assert (shown["done"], shown["acted"]) == (1500, 1500)
        again = http.post(f"{location}/resume")
        assert again.status_code == 409, again.text
    assert {container.ledger.get_job(i).status for i in ids} == {Status.CANCELLED}


def test_runner_unfinished_is_empty_on_a_fresh_ledger(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    assert ActionRunner(ledger, lambda query: None, utc_now).unfinished() == []
