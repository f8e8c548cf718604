"""A bulk action killed with SIGKILL mid-run resumes after its last recorded batch and
acts on no job twice (ADR 100), with the real ``ledger`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from uuid import UUID

from eventsourcing.utils import get_topic

from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.action import Action, ActionState
from ledger.commands import EnqueueJob
from ledger.job import Job
from tests.e2e.test_cli_friction import LEDGER, environment, run

JOBS = 8000
PROGRESSED = get_topic(Action.Progressed)


def first_progress(settings: Settings, deadline: float) -> UUID:
    """The action id once its first batch is recorded."""
    wired = build(settings)
    try:
        while time.monotonic() < deadline:
            found = wired.ledger.recorder.select_notifications(1, 10, topics=[PROGRESSED])
            if found:
                return found[0].originator_id  # type: ignore[return-value]
            time.sleep(0.02)
    finally:
        wired.close()
    raise AssertionError("no batch was recorded")


def test_a_killed_bulk_cancel_resumes_and_cancels_each_job_once(tmp_path: Path) -> None:
    settings = Settings(ledger_data_dir=tmp_path / "data")
    wired = build(settings)
    try:
        made = wired.ledger.execute_batch(
            [EnqueueJob(customer_id="acme", queue="emails") for _ in range(JOBS)], utc_now())
    finally:
        wired.close()
    env = {"LEDGER_DATA_DIR": str(tmp_path / "data")}
    assert LEDGER is not None
    process = subprocess.Popen(
        [LEDGER, "jobs", "cancel", "--queue", "emails", "--json"], cwd=tmp_path,
        env=environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        action_id = first_progress(settings, time.monotonic() + 120)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.communicate(timeout=60)
    wired = build(settings)
    try:
        killed: object = wired.ledger.repository.get(action_id)
        assert isinstance(killed, Action)
        assert killed.state is ActionState.RUNNING
        assert 0 < killed.done < JOBS, "the action ended before it was killed"
    finally:
        wired.close()
    resumed = run(tmp_path, "jobs", "resume-action", str(action_id), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished" in resumed.stdout
    wired = build(settings)
    try:
        action: object = wired.ledger.repository.get(action_id)
        assert isinstance(action, Action)
        assert (action.state, action.total, action.done) == (ActionState.FINISHED, JOBS, JOBS)
        for result in made[::37]:
            assert not isinstance(result, Exception)
            history = wired.ledger.history(result.job_id)
            assert sum(isinstance(e, Job.Cancelled) for e in history) == 1
        cancelled = wired.ledger.recorder.select_notifications(
            1, 3 * JOBS, topics=[get_topic(Job.Cancelled)])
        assert len(cancelled) == JOBS
    finally:
        wired.close()
