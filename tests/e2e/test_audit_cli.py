"""``ledger audit`` as a user runs it, on SQLite and PostgreSQL: clean after ``ledger demo``;
exit 1 naming the job after the log or a view is tampered with."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.job import Job
from tests.e2e.test_cli import demo_report, run


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {"LEDGER_DATA_DIR": str(tmp_path / "ledger-data")}
    else:
        yield {"DATABASE_URL": str(request.getfixturevalue("postgres_url"))}


def audit(cwd: Path, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    done = run(cwd, "audit", "--json", env=env)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def test_audit_passes_after_the_demo_and_names_a_job_with_a_superseded_report(
    tmp_path: Path, env: dict[str, str]
) -> None:
    report = demo_report(tmp_path, env=env)
    code, body, stderr = audit(tmp_path, env)
    assert code == 0, (body, stderr)
    assert body["ok"] is True
    assert body["jobs"] == report["jobs"] + 1 or body["jobs"] == report["jobs"]
    assert body["violations"] == []
    assert all(view["equal"] for view in body["views"])
    human = run(tmp_path, "audit", env=env)
    assert human.returncode == 0
    assert "ledger audit: OK" in human.stdout

    # Tamper: a heartbeat applied to the killed worker's superseded first attempt.
    killed = UUID(report["killed_worker"]["job_id"])
    wired = build(Settings.from_env(env))
    try:
        job = wired.ledger.get_job(killed)
        assert job.attempt >= 2
        job.trigger_event(Job.HeartbeatRecorded, timestamp=utc_now(), attempt=1,
                          worker_id=report["killed_worker"].get("worker_id", "ghost"),
                          worker_time=None)
        wired.ledger.save(job)
    finally:
        wired.close()
    code, body, stderr = audit(tmp_path, env)
    assert code == 1
    assert body["ok"] is False
    assert body["offending_jobs"] == [str(killed)]
    assert [v["invariant"] for v in body["violations"]] == ["superseded_attempt"]
    assert str(killed) in stderr
    assert stderr.startswith("ledger: error: audit failed")
    assert "Traceback" not in stderr


def test_audit_names_a_job_missing_from_a_view(tmp_path: Path, env: dict[str, str]) -> None:
    report = demo_report(tmp_path, env=env)
    victim = report["killed_worker"]["job_id"]
    if "DATABASE_URL" in env:
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("DELETE FROM job_status WHERE job_id::text = %s", (victim,))
    else:
        with sqlite3.connect(Path(env["LEDGER_DATA_DIR"]) / "ledger.sqlite3") as conn:
            conn.execute("DELETE FROM job_status WHERE job_id = ?", (victim,))
    code, body, stderr = audit(tmp_path, env)
    assert code == 1, body
    assert body["offending_jobs"] == [victim]
    assert {v["invariant"] for v in body["violations"]} == {"view_status"}
    assert [v["view"] for v in body["views"] if not v["equal"]] == ["job_status"]
    assert "job_status" in stderr
    assert victim in stderr
