"""A cancel reaches a ``ledger worker`` process over HTTP between heartbeats (ADR 100).

``ledger serve`` and ``ledger worker --api`` as real processes on the embedded default:
a 60 s handler with a 30 s heartbeat is cancelled through the API with the customer's
service key; the worker asks ``POST /workers/cancels`` about once a second, so the job
is ``cancelled`` by the worker well before its first heartbeat would have said so.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.test_serve import LEDGER, environment, ledger, serving


def key(cwd: Path, *args: str) -> str:
    made = ledger(cwd, "keys", "create", *args)
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[-1]


def status_of(http: httpx.Client, job_id: str) -> str:
    answer = http.get(f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    status: str = answer.json()["status"]
    return status


def until(predicate: object, timeout: float) -> float:
    """Seconds it took ``predicate()`` to hold (AssertionError after ``timeout``)."""
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_worker_process_stops_a_cancelled_job_before_its_heartbeat(tmp_path: Path) -> None:
    assert LEDGER is not None
    worker_key = key(tmp_path, "--role", "worker")
    service_key = key(tmp_path, "--role", "service", "--customer", "acme")
    with serving(tmp_path) as (url, _), httpx.Client(
        base_url=url, timeout=10, headers={"authorization": f"Bearer {service_key}"}
    ) as http:
        created = http.post("/jobs", json={"customer_id": "acme", "payload": {"seconds": 60}})
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        log = (tmp_path / "worker.log").open("w+")
        worker = subprocess.Popen(
            [LEDGER, "worker", "--handler", "adapters.worker.examples:sleepy", "--api", url,
             "--api-key", worker_key, "--heartbeat-interval", "30", "--grace", "5"],
            cwd=tmp_path, env=environment(), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, text=True,
        )
        try:
            until(lambda: status_of(http, job_id) == "in_progress", 30)
            cancel = http.post(f"/jobs/{job_id}/cancel", json={"reason": "wrong invoice"})
            assert cancel.status_code == 200, cancel.text
            took = until(lambda: status_of(http, job_id) == "cancelled", 20)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            log.seek(0)
            printed = log.read()
            log.close()
        assert took < 15, f"cancelled after {took:.1f}s (heartbeat 30 s): {printed}"
        assert worker.returncode == 0, printed
        history = http.get(f"/jobs/{job_id}/history").json()
        types = [event["type"] for event in history["events"]]
        assert types[-2:] == ["CancelRequested", "Cancelled"], types
        assert "HeartbeatRecorded" not in types
