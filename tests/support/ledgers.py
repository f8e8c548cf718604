"""Build a JobLedger on each store the contract tests cover."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from adapters.service.backend import backend_for
from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.policies.retry import RetryPolicy


def settings_for(store: str, tmp_path: Path, postgres_url: str | None) -> Settings:
    if store == "postgres":
        assert postgres_url is not None
        return Settings(database_url=postgres_url, ledger_data_dir=tmp_path / "data")
    return Settings(ledger_data_dir=tmp_path / "data")


def make_ledger(
    store: str,
    tmp_path: Path,
    postgres_url: str | None = None,
    *,
    snapshot_interval: int = 100,
    stale_threshold: timedelta = timedelta(minutes=10),
    retry_policy: RetryPolicy | None = None,
) -> JobLedger:
    """A ledger on ``store``: eventsourcing's in-memory recorder, SQLite or PostgreSQL."""
    if store == "memory":
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    else:
        env = backend_for(settings_for(store, tmp_path, postgres_url)).eventsourcing_env()
    return JobLedger(
        env,
        snapshot_interval=snapshot_interval,
        stale_threshold=stale_threshold,
        retry_policy=retry_policy or RetryPolicy(0, 0),
        draw=lambda: 0.5,
        pause=time.sleep,
    )
