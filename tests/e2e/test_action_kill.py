"""A bulk action killed with SIGKILL mid-run resumes after its last recorded batch and
acts on no job twice (ADR 100), with the real ``ledger`` command: the CLI's own run
resumed with ``ledger jobs resume-action``, and one that ``ledger serve`` was running in
the background resumed by the next ``ledger serve`` on its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from uuid import UUID

import httpx
from eventsourcing.utils import get_topic

from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.action import Action, ActionState
from ledger.commands import EnqueueJob
from ledger.job import Job
from tests.e2e.test_cli_friction import LEDGER, environment, run
from tests.e2e.test_serve import serving

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
    assert f"): {JOBS} of {JOBS} job(s) done" in resumed.stderr  # a line per batch
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


def serve(cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """``ledger serve --port 0`` and its URL."""
    assert LEDGER is not None
    process = subprocess.Popen(
        [LEDGER, "serve", "--port", "0", "--log-level", "warning"], cwd=cwd,
        env=environment(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    while True:
        line = process.stderr.readline()
        assert line, f"ledger serve exited before serving: {lines}"
        lines.append(line)
        found = re.search(r"API on (http://\S+)", line)
        if found:
            return process, found.group(1)


def test_a_killed_serve_resumes_its_bulk_action_when_it_starts_again(tmp_path: Path) -> None:
    settings = Settings(ledger_data_dir=tmp_path / "data")
    wired = build(settings)
    try:
        made = wired.ledger.execute_batch(
            [EnqueueJob(customer_id="acme", queue="emails") for _ in range(JOBS)], utc_now())
    finally:
        wired.close()
    env = {"LEDGER_DATA_DIR": str(tmp_path / "data")}
    body = {"kind": "cancel", "filter": {"queue": "emails"}, "reason": "bad template"}
    process, url = serve(tmp_path, env)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 120
            while http.post("/actions", json=body | {"dry_run": True}).json()["count"] < JOBS:
                assert time.monotonic() < deadline, "the view never caught up"
                time.sleep(0.1)
            answer = http.post("/actions", json=body)
        assert answer.status_code == 202, answer.text
        location = answer.headers["Location"]
        action_id = first_progress(settings, time.monotonic() + 120)
        assert location == f"/actions/{action_id}"
        process.kill()
    finally:
        process.kill()
        process.communicate(timeout=60)
    wired = build(settings)
    try:
        killed: object = wired.ledger.repository.get(action_id)
        assert isinstance(killed, Action)
        assert killed.state is ActionState.RUNNING
        assert 0 < killed.done < JOBS, "the action ended before it was killed"
    finally:
        wired.close()
    with serving(tmp_path, env) as (again, _), httpx.Client(base_url=again, timeout=30) as http:
        deadline = time.monotonic() + 120
        while (shown := http.get(location).json()).get("state") != "finished":
            assert time.monotonic() < deadline, shown
            time.sleep(0.1)
    assert (shown["total"], shown["done"]) == (JOBS, JOBS)
    wired = build(settings)
    try:
        for result in made[::37]:
            assert not isinstance(result, Exception)
            history = wired.ledger.history(result.job_id)
            assert sum(isinstance(e, Job.Cancelled) for e in history) == 1
        cancelled = wired.ledger.recorder.select_notifications(
            1, 3 * JOBS, topics=[get_topic(Job.Cancelled)])
        assert len(cancelled) == JOBS
    finally:
        wired.close()
