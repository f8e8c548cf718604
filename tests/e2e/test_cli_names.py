"""Every ``ledger`` option that becomes an event field or a query parameter is held to the
name rule at the CLI boundary (issue 13): a control character, a lone surrogate or a tab
is one line on stderr, a non-zero exit, and nothing is appended to the log.

The real command runs on the embedded default in a fresh directory. A NUL cannot travel in
a process's arguments (the kernel ends each at the first NUL), so U+0001 stands for the
control characters here and the unit test of :mod:`adapters.cli.options` covers U+0000;
a lone surrogate arrives as an argument that is not UTF-8 (Python's surrogateescape).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.service.bootstrap import build, load_settings
from ledger.commands import ClaimJob, EnqueueJob, FailJob
from tests.e2e.test_cli import CONFIG_VARIABLES, LEDGER

BAD = {"control": "a\x01b", "surrogate": "a\udcffb", "tab": "a\tb"}
HANDLER = "adapters.worker.examples:sleepy"


def run(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    return subprocess.run(
        [LEDGER, *args], cwd=cwd, env=env, capture_output=True, text=True,
        errors="backslashreplace", timeout=timeout, check=False,
    )


class Setup:
    def __init__(self, cwd: Path, dead_job: str) -> None:
        self.cwd = cwd
        self.dead_job = dead_job

    def head(self) -> int:
        path = self.cwd / "ledger-data" / "ledger.sqlite3"
        with sqlite3.connect(path) as conn:
            (head,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM stored_events").fetchone()
        return int(head)

    def keys(self) -> int:
        done = run(self.cwd, "keys", "list", "--json")
        assert done.returncode == 0, done.stderr
        return len(json.loads(done.stdout))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """A ledger with a key and a dead-lettered job (so a redrive would append)."""
    cwd = tmp_path_factory.mktemp("names")
    settings = load_settings({"LEDGER_DATA_DIR": str(cwd / "ledger-data")})
    wired = build(settings)
    try:
        now = datetime.now(UTC)
        job_id = wired.ledger.execute(
            EnqueueJob(customer_id="acme", max_attempts=1), now
        ).job_id
        wired.ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), now)
        wired.ledger.execute(FailJob(job_id=job_id, attempt=1, worker_id="w", error="x"), now)
        assert wired.ledger.get_job(job_id).status == "dead_lettered"
    finally:
        wired.close()
    done = run(cwd, "keys", "create", "--role", "admin")
    assert done.returncode == 0, done.stderr
    return Setup(cwd, str(job_id))


COMMANDS = {
    "keys create --customer": lambda s, bad: ["keys", "create", "--role", "admin",
                                              "--customer", bad],
    "keys create --label": lambda s, bad: ["keys", "create", "--role", "admin", "--label", bad],
    "keys revoke KEY_ID": lambda s, bad: ["keys", "revoke", bad],
    "jobs list --customer": lambda s, bad: ["jobs", "list", "--customer", bad],
    "jobs list --queue": lambda s, bad: ["jobs", "list", "--queue", bad],
    "dlq list --customer": lambda s, bad: ["dlq", "list", "--customer", bad],
    "dlq redrive --actor": lambda s, bad: ["dlq", "redrive", s.dead_job, "--actor", bad],
    "worker --worker-id": lambda s, bad: ["worker", "--handler", HANDLER, "--worker-id", bad],
    "worker --queue": lambda s, bad: ["worker", "--handler", HANDLER, "--queue", bad],
}


@pytest.mark.parametrize("what", sorted(BAD))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_name_is_one_line_and_appends_nothing(
    setup: Setup, command: str, what: str
) -> None:
    head, keys = setup.head(), setup.keys()

    done = run(setup.cwd, *COMMANDS[command](setup, BAD[what]), timeout=30)

    lines = done.stderr.splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ledger: error: ")
    assert "not a name: it contains U+" in lines[0]
    assert command.rsplit(maxsplit=1)[-1].lower() in lines[0].lower()  # names the option
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert setup.head() == head
    assert setup.keys() == keys


CONTROLS = {
    "jobs cancel --queue": ["jobs", "cancel", "--queue"],
    "jobs cancel --customer": ["jobs", "cancel", "--customer"],
    "queues pause QUEUE": ["queues", "pause"],
}


@pytest.mark.parametrize("what", sorted(BAD))
@pytest.mark.parametrize("command", sorted(CONTROLS))
def test_a_bad_name_in_an_operator_control_is_refused_by_its_command(
    setup: Setup, command: str, what: str
) -> None:
    """The controls' filters and queue names are checked by the commands they build."""
    head = setup.head()

    done = run(setup.cwd, *CONTROLS[command], BAD[what], timeout=30)

    assert done.returncode != 0
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("ledger: error: ")
    assert setup.head() == head
