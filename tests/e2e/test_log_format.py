"""``LOG_FORMAT`` on real ``ledger`` processes (ADR 125).

``LOG_FORMAT=json``: ``ledger serve`` writes every log line as one JSON object (uvicorn's
too; only its own ``ledger serve: ...`` start lines stay text); a worker killed with
SIGKILL mid-job is found stale and requeued, and those decisions are JSON lines carrying
the job, the attempt and the trace id of the ``traceparent`` the job was enqueued with.
A value other than text or json stops the command with one line naming the variable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

LEDGER = shutil.which("ledger") or "ledger"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CONFIG = ("DATABASE_URL", "SQS_QUEUE_URL", "SQS_DLQ_URL", "SLACK_WEBHOOK_URL",
          "LEDGER_API_URL", "LEDGER_API_KEY")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env.update({"LEDGER_DATA_DIR": str(tmp_path / "data"), **extra})
    return env


@contextmanager
def process(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[list[str]]:
    """A ``ledger`` process whose stderr lines are collected as they come."""
    child = subprocess.Popen([LEDGER, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    stream = child.stderr
    assert stream is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")),
                              daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        reader.join(5)
        stream.close()


def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.05)
    return found


def decisions(lines: list[str], event: str) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in list(lines) if line.startswith("{")]
    return [line for line in parsed if line.get("event") == event]


def test_a_bad_log_format_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [LEDGER, "worker", "--handler", "adapters.worker.examples:noop"], cwd=tmp_path,
        env=environment(tmp_path, LOG_FORMAT="yaml"), capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ledger worker: error: LOG_FORMAT must be text or json, not 'yaml'"]


@pytest.mark.slow
def test_serve_and_a_killed_worker_log_json_decisions_with_the_trace(tmp_path: Path) -> None:
    env = environment(tmp_path, LOG_FORMAT="json", STALE_THRESHOLD_MINUTES="0.02",
                      CHECK_INTERVAL_SECONDS="0.3")
    with process(["serve", "--port", "0"], env, tmp_path) as served:
        base = until(lambda: next((m.group(1) for line in list(served)
                                   if (m := re.search(r"API on (http://\S+)", line))), None))
        job_id = httpx.post(f"{base}/jobs", headers={"traceparent": TRACEPARENT}, json={
            "customer_id": "acme", "payload": {"seconds": 60}}).json()["job_id"]
        worker_args = ["worker", "--handler", "adapters.worker.examples:sleepy",
                       "--heartbeat-interval", "0.2"]
        with process(worker_args, env, tmp_path):
            until(lambda: httpx.get(f"{base}/jobs/{job_id}").json()["status"] == "in_progress")
        # the worker was killed (SIGKILL) mid-job: the stale monitor requeues the attempt
        until(lambda: [d for d in decisions(served, "requeued") if d["job_id"] == job_id])
        lines = list(served)
    stale = [d for d in decisions(lines, "stale_detected") if d["job_id"] == job_id]
    requeued = [d for d in decisions(lines, "requeued") if d["job_id"] == job_id]
    assert [(d["attempt"], d["trace_id"]) for d in stale + requeued] == [
        (1, TRACEPARENT[3:35]), (1, TRACEPARENT[3:35])]
    assert requeued[0]["reason"] == "stale"
    for line in lines:
        if line.startswith("ledger serve: "):
            continue  # its start lines on the terminal
        assert {"ts", "level", "logger"} <= set(json.loads(line)), line
