"""A real console to drive from a browser: ``ledger demo``'s data, ``ledger serve`` and a
``ledger worker``, as processes in a temporary directory, with an admin and a staff key.

The data is what a new user has after ``ledger demo`` (completed jobs, a killed worker's
job recovered, a dead letter redriven, an alert); the tests add their own jobs over HTTP.
The worker runs the demo's handler: ``{"poison": true, "fail_until": 3}`` fails three
attempts (dead-lettered) and completes once redriven; ``{"seconds": S}`` sleeps S seconds,
heartbeating every 0.3 s, and stops when the ledger says the job was cancelled.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

LEDGER = shutil.which("ledger")
CONFIG_VARIABLES = (
    "DATABASE_URL", "LEDGER_DATA_DIR", "SQS_QUEUE_URL", "SQS_DLQ_URL", "SQS_QUEUE_URLS",
    "SQS_PRIORITY_QUEUE_URLS", "SLACK_WEBHOOK_URL", "LEDGER_API_URL", "LEDGER_API_KEY",
    "STALE_THRESHOLD_MINUTES",
)
SHORT_CLOCKS = {
    "RETRY_BASE_DELAY_SECONDS": "0.2",
    "RETRY_MAX_DELAY_SECONDS": "0.5",
    "DLQ_CHECK_INTERVAL_SECONDS": "1",
    "CHECK_INTERVAL_SECONDS": "1",
    "ALERT_GROUP_WAIT_SECONDS": "0.5",
}
HANDLER = "adapters.cli.demo_handlers:work"


@dataclass(frozen=True)
class Console:
    """A running ``ledger serve`` (``url``), its directory and two keys."""

    url: str
    cwd: Path
    env: dict[str, str]
    admin_key: str
    staff_key: str

    @property
    def ui(self) -> str:
        return f"{self.url}/ui"

    def api(self, key: str | None = None) -> httpx.Client:
        """An HTTP client of the API with ``key`` (the admin key by default)."""
        headers = {"authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def enqueue(self, **body: Any) -> str:
        """``POST /jobs`` as the admin; the new job's id."""
        with self.api() as http:
            answer = http.post("/jobs", json={"customer_id": "acme", **body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        with self.api() as http:
            answer = http.get(f"/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_ledger(self.cwd, self.env, *args)


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_ledger(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
    done = subprocess.run(
        [LEDGER, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
        check=False, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"ledger {' '.join(args)}: {done.stderr}"
    return done


def create_key(cwd: Path, env: dict[str, str], role: str) -> str:
    made = run_ledger(cwd, env, "keys", "create", "--role", role, "--label", f"browser-{role}")
    return made.stdout.strip().splitlines()[-1]


@contextmanager
def process(cwd: Path, env: dict[str, str], name: str, *args: str) -> Iterator[Path]:
    """``ledger ARGS`` in the background, its output in ``cwd/name.log``; SIGTERM at the end
    (SIGKILL if it has not stopped 30 s later)."""
    assert LEDGER is not None
    log = cwd / f"{name}.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            [LEDGER, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def served_url(log: Path, timeout: float = 120) -> str:
    """The ``API on http://...`` address ``ledger serve`` printed in its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"API on (http://\S+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"ledger serve did not start: {log.read_text()[-2000:]}")


def seed_with_demo(cwd: Path) -> None:
    """``ledger demo`` in ``cwd``; once more in a fresh directory if it gave up waiting
    (its waits are fixed, and a machine loaded by other work can outlast them)."""
    assert LEDGER is not None
    for attempt in (1, 2):
        demo = subprocess.run(
            [LEDGER, "demo", "--json"], cwd=cwd, env=environment({}), capture_output=True,
            text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
        )
        if demo.returncode == 0:
            return
        if attempt == 1 and "waited too long" in demo.stderr:
            shutil.rmtree(cwd / "ledger-data", ignore_errors=True)
            continue
        raise AssertionError(f"ledger demo failed: {demo.stderr[-3000:]}")


@contextmanager
def running_console(cwd: Path) -> Iterator[Console]:
    """Seed with ``ledger demo``, create the keys, then serve with one worker running."""
    env = environment(SHORT_CLOCKS)
    seed_with_demo(cwd)
    admin, staff = create_key(cwd, env, "admin"), create_key(cwd, env, "staff")
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(
            process(cwd, env, "serve", "serve", "--port", "0", "--log-level", "warning")
        )
        url = served_url(log)
        stack.enter_context(process(
            cwd, env, "worker", "worker", "--handler", HANDLER, "--concurrency", "4",
            "--heartbeat-interval", "0.3", "--grace", "1", "--worker-id", "browser-worker",
            "--log-level", "warning",
        ))
        yield Console(url, cwd, env, admin, staff)


def wait_until(predicate: Any, timeout: float = 30, interval: float = 0.1) -> Any:
    """Poll ``predicate()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {predicate}")
        time.sleep(interval)
