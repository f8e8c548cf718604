"""``ledger schedules`` as a user runs it (ADR 130): add, list --json, pause, resume,
remove; bad input is one line on stderr, a non-zero exit, and nothing recorded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest


def ledger(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    return subprocess.run(["ledger", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def one_error(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert words in lines[0]


def test_a_schedule_through_its_life_from_the_cli(tmp_path: Path) -> None:
    added = ledger(tmp_path, "schedules", "add", "nightly", "--cron", "30 2 * * *",
                   "--queue", "reports", "--payload", '{"kind": "daily"}',
                   "--timezone", "Europe/Paris", "--missed", "skip", "--reason", "finance")
    assert added.returncode == 0, added.stderr
    assert "nightly added: active" in added.stdout
    one_error(ledger(tmp_path, "schedules", "add", "nightly", "--cron", "* * * * *"),
              "exists")
    assert ledger(tmp_path, "schedules", "pause", "nightly", "--reason", "audit").returncode == 0
    audit = ledger(tmp_path, "audit")  # a schedule's events are not a job's
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr
    listed = json.loads(ledger(tmp_path, "schedules", "list", "--json").stdout)
    assert [(r["name"], r["state"], r["missed"], r["payload"], r["changed_reason"])
            for r in listed] == [("nightly", "paused", "skip", {"kind": "daily"}, "audit")]
    assert ledger(tmp_path, "schedules", "resume", "nightly").returncode == 0
    assert ledger(tmp_path, "schedules", "remove", "nightly", "--reason", "done").returncode == 0
    assert json.loads(ledger(tmp_path, "schedules", "list", "--json").stdout) == []
    one_error(ledger(tmp_path, "schedules", "pause", "nightly"), "no schedule named")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--cron", "61 * * * *"], "cron"),
        (["--cron", "*/5 * * *"], "five are needed"),
        (["--cron", "* * * * *", "--timezone", "Mars/Base"], "timezone"),
        (["--cron", "* * * * *", "--payload", "{not json"], "--payload is not JSON"),
        (["--cron", "* * * * *", "--payload", "[" * 100_000], "--payload"),
        (["--cron", "* * * * *", "--queue", "a queue"], "queue"),
        (["--cron", "* * * * *", "--reason", "\x07"], "reason"),
    ],
)
def test_bad_input_is_one_line_and_records_nothing(
    tmp_path: Path, args: list[str], words: str
) -> None:
    one_error(ledger(tmp_path, "schedules", "add", "s", *args), words)
    assert json.loads(ledger(tmp_path, "schedules", "list", "--json").stdout) == []
