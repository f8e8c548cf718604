"""``GET /health?as_of=`` over real HTTP with keys, on SQLite and PostgreSQL (ADR 90): the
view-derived health body as it was at a past moment (counts by status, the stale jobs the
stale rule finds then, alerts), staff only, while the live ``/health`` stays open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import build, utc_now
from adapters.service.keys import KeyVerifier
from adapters.service.settings import Settings
from ledger.access import Role, new_key
from ledger.commands import ClaimJob, CompleteJob, EnqueueJob, RecordHeartbeat
from projections.checkpoints import take
from projections.registry import get_view
from tests.support.http import projections_running, serve_in_thread, wait_for
from tests.support.projection_env import BACKENDS

T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("database", BACKENDS)
def test_health_as_of_a_past_moment(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    container = build(Settings(database_url=url, ledger_data_dir=tmp_path / "data"))
    keys = container.backend.key_store()
    staff, staff_record = new_key(Role.STAFF, None, None, utc_now())
    acme, acme_record = new_key(Role.SERVICE, "acme", None, utc_now())
    keys.add(staff_record)
    keys.add(acme_record)
    ledger = container.ledger
    job = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id
    ledger.execute(EnqueueJob(customer_id="acme"), T0)
    ledger.execute(ClaimJob(job_id=job, worker_id="w"), T0 + timedelta(seconds=1))
    ledger.execute(RecordHeartbeat(job_id=job, attempt=1, worker_id="w"),
                   T0 + timedelta(seconds=2))
    ledger.execute(CompleteJob(job_id=job, attempt=1, worker_id="w"), T0 + timedelta(hours=1))
    parts = build_http(container)
    parts.access.verifier = KeyVerifier(keys, ttl=0.2)

    def asked(as_of: str, key: str | None = staff) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return client.get("/health", params={"as_of": as_of}, headers=headers)

    try:
        with projections_running(container), serve_in_thread(parts) as running, \
                httpx.Client(base_url=running.base_url, timeout=10) as client:
            wait_for(lambda: client.get("/health").json()["metrics"]["jobs_pending"] == 1)
            store = container.backend.open_views()
            checkpoints = container.backend.checkpoints()
            try:
                taken = take(store, checkpoints, get_view("health_metrics"), utc_now())
            finally:
                checkpoints.close()
                store.close()

            silent = asked("2026-01-05T03:30Z")  # in progress, silent for 30 minutes
            assert silent.status_code == 200, silent.text
            body = silent.json()
            assert body["position"] == 4
            assert body["status"] == "degraded"
            assert body["services"]["workers"]["stale_jobs"] == [str(job)]
            assert body["metrics"]["jobs_in_progress"] == 1
            assert body["metrics"]["jobs_pending"] == 1
            assert body["jobs_by_status"]["in_progress"] == 1
            assert body["checkpoints"]["health_metrics"] is None  # taken later than the cut

            later = asked("2026-01-05T05:00Z").json()
            assert later["position"] == 5
            assert later["services"]["workers"]["stale_count"] == 0
            assert later["jobs_by_status"]["completed"] == 1
            assert later["metrics"]["jobs_completed_today"] == 1
            assert later["checkpoints"]["health_metrics"] == taken.position

            assert asked("@1").json()["jobs_by_status"]["pending"] == 1
            assert asked("2026-01-05T02:00Z").json()["position"] == 0
            assert asked("@1", key=None).status_code == 401
            assert asked("@1", key=acme).status_code == 403
            for odd in ("@99", "@-1", "2999-01-01T00:00Z", "03:00", "", "@" + "9" * 30):
                answer = asked(odd)
                assert answer.status_code == 400, (odd, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
            live = client.get("/health")
            assert live.status_code == 200
            assert "as_of" not in live.json()
    finally:
        container.close()
