"""Regression: the alert of a stopped view (``ledger serve``'s view alerts, ADR 65) worked
through one session for the life of the process; after a PostgreSQL restart every round
failed with "the connection is closed" and no stopped view was alerted again until the
process restarted. A round that finds no server now opens a new session (ADR 75).

The session is ended from the server (``pg_terminate_backend``, what a restart does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import psycopg
import pytest

from adapters.service.bootstrap import Container, build
from adapters.service.settings import Settings
from adapters.service.view_alerts import ViewAlerts
from adapters.slack.webhook import LoggedAlerts
from projections.registry import VIEWS

pytestmark = pytest.mark.postgres


@pytest.fixture
def container(postgres_url: str, tmp_path: Path) -> Iterator[Container]:
    wired = build(Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url))
    yield wired
    wired.close()


def test_view_alerts_open_a_new_session_after_theirs_is_ended(
    container: Container, postgres_url: str
) -> None:
    first = container.backend.open_views()
    alerts = ViewAlerts(first, LoggedAlerts(), list(VIEWS), reopen=container.backend.open_views)
    try:
        assert anyio.run(alerts.check) == 0  # the session works and holds the sender's lock
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        anyio.run(alerts.round)  # fails on the dead session and replaces it
        assert alerts.store is not first
        assert anyio.run(alerts.check) == 0  # raised "the connection is closed" before
    finally:
        first.close()
        for store in alerts.opened:
            store.close()
