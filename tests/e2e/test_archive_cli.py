"""The issue's "done when" with real processes (ADR 110): after ``ledger demo``,
``ledger archive`` moves the ended jobs out of the hot table and every job's history and
state, the job list, and ``ledger audit`` (and ``--deep``) answer as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import demo_report, run


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    base = {"LEDGER_DATA_DIR": str(tmp_path / "ledger-data")}
    if request.param == "postgres":
        base["DATABASE_URL"] = str(request.getfixturevalue("postgres_url"))
    return base


def ledger_json(cwd: Path, env: dict[str, str], *args: str) -> Any:
    done = run(cwd, *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(600)
def test_archive_after_the_demo_and_everything_answers_the_same(
    tmp_path: Path, env: dict[str, str]
) -> None:
    demo_report(tmp_path, env=env)
    jobs = ledger_json(tmp_path, env, "jobs", "list", "--limit", "100")
    shown = {  # a few: each is a process
        j["job_id"]: ledger_json(tmp_path, env, "jobs", "show", j["job_id"]) for j in jobs[:3]
    }
    hot = ledger_json(tmp_path, env, "archive", "status")["hot_events"]

    report = ledger_json(tmp_path, env, "archive", "--older-than", "1s")
    assert report["jobs"] >= len(jobs) - 1  # the one holding the log's last event stays hot
    status = ledger_json(tmp_path, env, "archive", "status")
    assert status["hot_events"] == hot - report["events"]
    assert status["segments"] == 1

    assert ledger_json(tmp_path, env, "jobs", "list", "--limit", "100") == jobs
    assert {j: ledger_json(tmp_path, env, "jobs", "show", j) for j in shown} == shown
    for args in (("audit",), ("audit", "--deep")):
        done = run(tmp_path, *args, "--json", env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        assert json.loads(done.stdout)["violations"] == []
    # the job that finished first is archived for sure (the one holding the log's last
    # event stays hot, and which job that is depends on the demo's timing)
    first = min((j for j in jobs if j["finished_at"]), key=lambda j: j["finished_at"])
    refused = run(tmp_path, "jobs", "cancel", first["job_id"], env=env)
    assert refused.returncode != 0
    assert "archived" in refused.stdout + refused.stderr
