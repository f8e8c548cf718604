"""The ``ledger`` command as a user runs it: a real process, a real working directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

LEDGER = shutil.which("ledger")

CONFIG_VARIABLES = (
    "DATABASE_URL",
    "LEDGER_DATA_DIR",
    "STALE_THRESHOLD_MINUTES",
    "SQS_QUEUE_URL",
    "SQS_DLQ_URL",
    "SLACK_WEBHOOK_URL",
)


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
    environment = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    environment["COLUMNS"] = "200"
    environment.update(env or {})
    return subprocess.run(
        [LEDGER, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def demo_report(cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = run(cwd, "demo", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_demo_runs_on_the_embedded_default_and_leaves_ledger_data(tmp_path: Path) -> None:
    report = demo_report(tmp_path)
    assert (tmp_path / "ledger-data" / "ledger.sqlite3").is_file()
    assert report["store"] == "sqlite"
    assert report["jobs"] == 36
    assert report["counts"] == {"completed": 36}
    # The killed worker's job was found stale and completed by another worker.
    recovery = report["recovery"]
    assert recovery["threshold_seconds"] == 2
    # Stale once 2 s passed since its last heartbeat (which came shortly before the kill).
    assert 0 < recovery["stale_after_seconds"] <= recovery["completed_after_seconds"] < 15
    assert recovery["completed_by"].startswith("demo-worker-")
    # The poison job: dead-lettered, alerted once (in the deployment's format), redriven.
    history = [event["type"] for event in report["history"]]
    assert history.count("Failed") == 3
    assert history.count("AlertSent") == 1
    assert history.index("DeadLettered") < history.index("AlertSent") < history.index(
        "Redriven") < history.index("Completed")
    assert report["redriven"] is True
    blocks = report["alert"]["blocks"]
    assert blocks[0]["type"] == "header"
    assert report["dead_lettered_job"] in blocks[1]["fields"][0]["text"]
    assert all(view["lag"] == 0 for view in report["projections"])
    health = report["health"]
    assert health["status"] == "healthy"
    assert health["metrics"]["jobs_completed_today"] == 36
    assert report["seconds"] < 60

    killed = report["killed_worker"]["job_id"]
    shown = run(tmp_path, "jobs", "show", killed, "--json")
    assert shown.returncode == 0, shown.stderr
    job = json.loads(shown.stdout)
    assert job["status"] == "completed"
    types = [e["type"] for e in job["history"]]
    assert types[:2] == ["Enqueued", "Claimed"]
    assert "StaleDetected" in types
    assert types.index("StaleDetected") < types.index("Requeued") < types.index("Completed")
    readable = run(tmp_path, "jobs", "show", killed)
    assert "StaleDetected" in readable.stdout

    listed = run(tmp_path, "jobs", "list", "--status", "completed", "--json")
    assert len(json.loads(listed.stdout)) == 36


def test_demo_honours_ledger_data_dir(tmp_path: Path) -> None:
    demo_report(tmp_path, env={"LEDGER_DATA_DIR": str(tmp_path / "elsewhere")})
    assert (tmp_path / "elsewhere" / "ledger.sqlite3").is_file()
    assert not (tmp_path / "ledger-data").exists()


@pytest.mark.postgres
def test_demo_runs_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    report = demo_report(tmp_path, env={"DATABASE_URL": postgres_url})
    assert report["store"] == "postgres"
    assert report["counts"] == {"completed": 36}
    assert report["redriven"] is True
    assert not (tmp_path / "ledger-data" / "ledger.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "env", "message", "code"),
    [
        (("jobs", "show", "not-a-uuid"), {}, "is not a job id", 2),
        (("jobs", "show", "00000000-0000-0000-0000-000000000000"), {}, "no job with id", 1),
        (("jobs", "list"), {"STALE_THRESHOLD_MINUTES": "soon"}, "STALE_THRESHOLD_MINUTES", 1),
        (("jobs", "list"), {"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL", 1),
        (("jobs", "list"), {"DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}, "PostgreSQL", 1),
        (("keys", "list"), {"DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}, "PostgreSQL", 1),
        (("jobs", "lst"), {}, "No such command", 2),
    ],
)
def test_user_errors_are_one_line_without_a_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str, code: int
) -> None:
    done = run(tmp_path, *args, env=env)
    assert done.returncode == code
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ledger: error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = run(tmp_path, "--help")
    assert done.returncode == 0
    for command in ("demo", "jobs"):
        assert command in done.stdout
