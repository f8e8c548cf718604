"""The archive in ``ledger serve`` (ADR 110): the policy is off unless ARCHIVE_OLDER_THAN is
set, a round archives what ``ledger archive`` would, and /health and /metrics give the
archive's figures (segments, jobs, events, bytes, the hot log's span)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import httpx

from adapters.http.wiring import build_http
from adapters.service.archive_policy import archive_round
from adapters.service.backend import backend_for
from adapters.service.bootstrap import utc_now
from adapters.service.parts import archive_parts
from adapters.service.settings import Settings
from ledger.access import Role, new_key
from tests.integration.test_archive import hot_events, seeded
from tests.support.http import serve_in_thread
from tests.support.projection_env import Backend


def test_the_policy_is_off_by_default_and_read_from_the_environment() -> None:
    assert Settings.from_env({}).archive_older_than is None
    assert Settings.from_env({"ARCHIVE_OLDER_THAN": "30d"}).archive_older_than == timedelta(
        days=30
    )


def test_a_round_archives_and_health_and_metrics_say_so(backend: Backend) -> None:
    workload = seeded(backend)
    container = workload.container
    assert archive_parts(container) == []
    settings = replace(backend.settings, archive_older_than=timedelta(days=1))
    assert len(archive_parts(replace(container, settings=settings))) == 1
    hot = hot_events(backend)
    line = archive_round(backend_for(settings), settings, timedelta(days=1), utc_now())
    assert "segment(s)" in line
    assert hot_events(backend) < hot
    secret, record = new_key(Role.ADMIN, None, None, utc_now())
    container.backend.key_store().add(record)
    with serve_in_thread(build_http(container)) as api, httpx.Client(
        base_url=api.base_url, headers={"authorization": f"Bearer {secret}"}, timeout=10
    ) as http:
        archive = http.get("/health").json()["archive"]
        metrics = http.get("/metrics").text
    assert archive["segments"] == 1
    assert archive["archived_jobs"] > 0
    assert archive["archive_bytes"] > 0
    assert 0 < archive["oldest_hot_position"] <= archive["head"]
    assert f"jobledger_archive_jobs {float(archive['archived_jobs'])}" in metrics
