"""A view stopped by a poison event, as a user of ``ledger serve`` and the CLI sees it
(issue 13): ``/health`` degraded naming the view and the error, ``/metrics`` counting it,
one alert, ``projections status`` showing it, ``verify`` and ``audit`` failing."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from uuid import uuid4

import httpx
import msgspec

from tests.e2e.test_serve import ledger, serving

STAMP = {"_type_": "datetime_iso", "_data_": "2026-03-02T09:00:00+00:00"}


def poison(data: Path) -> int:
    """An enqueue whose max_attempts no SQLite integer holds, written straight into the log
    (as an old release could have left it); returns its position."""
    state = msgspec.json.encode({"timestamp": STAMP, "customer_id": "acme",
                                 "queue": "default", "max_attempts": 2**70})
    with sqlite3.connect(data / "ledger.sqlite3") as conn:
        cursor = conn.execute(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "VALUES (?, 1, 'ledger.job:Job.Enqueued', ?)", (uuid4().hex, state))
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def test_a_poison_event_stops_its_views_loudly(tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path / "data")}
    with serving(tmp_path, env) as (url, lines), httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/jobs", json={"customer_id": "acme"}).status_code == 201
        position = poison(tmp_path / "data")
        assert http.post("/jobs", json={"customer_id": "acme"}).status_code == 201
        deadline = time.monotonic() + 20
        while True:
            body = http.get("/health").json()
            view = body["services"]["projections"]["job_status"]
            if view["error"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert body["status"] in ("degraded", "unhealthy"), body
        assert f"stopped at event {position}" in view["error"], body
        assert "refused" in view["error"]
        metrics = http.get("/metrics").text
        assert 'jobledger_projection_stopped{view="job_status"} 1.0' in metrics
        assert 'jobledger_projection_stopped{view="rate_limits"} 0.0' in metrics
        time.sleep(6)  # the view-alert check runs every 5 seconds
    alerts = [line for line in lines if "Projection stopped: view job_status" in line]
    assert len(alerts) == 1, lines

    status = ledger(tmp_path, "projections", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    rows = {row["view"]: row for row in json.loads(status.stdout)}
    assert rows["job_status"]["position"] == position - 1
    assert f"stopped at event {position}" in rows["job_status"]["error"]
    assert rows["rate_limits"]["error"] is None

    verify = ledger(tmp_path, "projections", "verify", "job_status", env=env)
    assert verify.returncode == 1
    assert "job_status" in verify.stderr
    assert f"stopped at event {position}" in verify.stderr
    assert len(verify.stderr.strip().splitlines()) == 1

    audit = ledger(tmp_path, "audit", "--no-dispatch", env=env)
    assert audit.returncode == 1
    assert "job_status" in audit.stderr
    assert f"stopped at event {position}" in audit.stderr
