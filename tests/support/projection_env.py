"""A ledger, its views' store and a stream of realistic events, on SQLite or PostgreSQL."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.service.backend import backend_for
from adapters.service.bootstrap import Container, build
from adapters.service.settings import Settings
from ledger.commands import (
    AnyCommand,
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    Outcome,
    RecordHeartbeat,
    RedriveJob,
)
from ledger.tally import TallyCounter
from projections.memory import MemoryView
from projections.model import View
from projections.store import LIVE, ViewStore
from tests.support.projection_events import T0, decoded

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Backend:
    name: str
    settings: Settings
    containers: list[Container] = field(default_factory=list)
    stores: list[ViewStore] = field(default_factory=list)

    def ledger(self) -> Container:
        container = build(self.settings)
        self.containers.append(container)
        return container

    def store(self) -> ViewStore:
        store = backend_for(self.settings).open_views()
        self.stores.append(store)
        return store

    @property
    def env(self) -> dict[str, str]:
        """The environment a ``ledger`` process needs to use this backend."""
        env = {"LEDGER_DATA_DIR": str(self.settings.ledger_data_dir),
               "STALE_THRESHOLD_MINUTES": str(self.settings.stale_threshold_minutes),
               "RETRY_BASE_DELAY_SECONDS": "0", "RETRY_MAX_DELAY_SECONDS": "0"}
        if self.settings.database_url:
            env["DATABASE_URL"] = self.settings.database_url
        return env

    def close(self) -> None:
        for store in self.stores:
            store.close()
        for container in self.containers:
            container.close()


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name = request.param
    url = request.getfixturevalue("postgres_url") if name == "postgres" else None
    settings = Settings(
        database_url=url, ledger_data_dir=tmp_path / "data", stale_threshold_minutes=0.001,
        retry_base_delay_seconds=0, retry_max_delay_seconds=0,
    )
    return Backend(name, settings)


CUSTOMERS = ("acme", "globex", "initech")
QUEUES = ("default", "emails")


@dataclass
class Workload:
    """Drives the ledger through job lives: enqueues, claims, heartbeats, completions,
    failures with retries and dead letters, stale detections, late reports, redrives and
    rate-limiter tallies; about ``size`` commands a step, all in one batch."""

    container: Container
    seed: int = 1
    now: datetime = T0
    jobs: dict[UUID, Outcome] = field(default_factory=dict)
    rng: random.Random = field(init=False)
    tallies: TallyCounter = field(init=False)
    steps: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.tallies = TallyCounter(reporter=f"test-api-{self.seed}")

    def step(self, size: int = 20) -> None:
        rng = self.rng
        commands: list[AnyCommand] = []
        for _ in range(size):
            if rng.random() < 0.2 or not self.jobs:
                commands.append(EnqueueJob(
                    customer_id=rng.choice(CUSTOMERS), queue=rng.choice(QUEUES), max_attempts=2
                ))
                continue
            job_id, known = rng.choice(list(self.jobs.items()))
            commands.append(self._next(job_id, known))
        for _ in range(rng.randrange(0, 30)):
            self.tallies.count(rng.choice(CUSTOMERS), "public", admitted=rng.random() < 0.7,
                               at=self.now)
        self.now += timedelta(seconds=1)
        ledger = self.container.ledger
        for result in ledger.execute_batch(commands, self.now):
            if isinstance(result, Outcome):
                self.jobs[result.job_id] = result
        self.steps += 1
        tallies = self.tallies.flush(self.now, everything=self.steps % 10 == 0)
        if tallies:
            ledger.save(*tallies)

    def _next(self, job_id: UUID, known: Outcome) -> AnyCommand:
        rng = self.rng
        worker = f"worker-{known.attempt % 3}"
        attempt = max(known.attempt, 1)
        if known.status == "pending":
            return ClaimJob(job_id=job_id, worker_id=f"worker-{(known.attempt + 1) % 3}")
        if known.status == "dead_lettered":
            return RedriveJob(job_id=job_id, actor="operator")
        if known.status == "completed":
            return CompleteJob(job_id=job_id, attempt=attempt, worker_id="worker-late")
        roll = rng.random()
        if roll < 0.55:
            return RecordHeartbeat(job_id=job_id, attempt=attempt, worker_id=worker)
        if roll < 0.75:
            return CompleteJob(job_id=job_id, attempt=attempt, worker_id=worker)
        if roll < 0.9:
            return FailJob(job_id=job_id, attempt=attempt, worker_id=worker, error="boom")
        return DetectStale(job_id=job_id, attempt=attempt, detected_by="monitor")

    def run(self, steps: int, size: int = 20) -> None:
        for _ in range(steps):
            self.step(size)


def normal(value: Any) -> Any:
    """A view value as text, whichever store it came from."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def store_tables(store: ViewStore, view: View) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t.name: [tuple(normal(v) for v in row) for row in store.rows(t, LIVE)]
        for t in view.tables
    }


def reference_tables(store: ViewStore, view: View, upto: int) -> dict[str, list[tuple[Any, ...]]]:
    """The view folded in memory from the log up to ``upto``."""
    memory = MemoryView(view)
    memory.feed(decoded(store.read_events(0, upto, upto)))
    return {t.name: [tuple(normal(v) for v in row) for row in memory.table(t.name)]
            for t in view.tables}
