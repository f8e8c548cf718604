"""A simulated history, day by day, for ``bench.archive_year`` (issue 17).

The jobs of a day are copies of a few real jobs (made once through the ledger by
:func:`bench.archive.template` and the functions here, at the simulated year's first
day), each copy under a new id with its events' date moved to the simulated day, written
with COPY. The views are then fed by the real projection runner (not written by hand,
as ``bench.archive.seed`` does): ``ledger audit`` must find them equal to a rebuild.

A day's mix: completed jobs of ``beats`` heartbeats; dead letters that were redriven
and then completed (resolved: archivable); dead letters still waiting for an operator
(unresolved: never archived, so they stay hot for the whole year); and, on the last
day only, jobs still running (the heartbeat benchmark's targets).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg

from adapters.service.dispatcher import DISPATCH
from bench.archive import OLD, template
from ledger.commands import (
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    FailJob,
    RecordAlert,
    RecordHeartbeat,
    RedriveJob,
)
from projections.registry import VIEWS
from projections.runner import Runner

Events = list[tuple[int, str, bytes]]
"""One job's stored events: (version, topic, state)."""
DAY_TEXT = OLD.strftime("%Y-%m-%dT").encode()
"""Every template event is stamped on the simulated year's first day (moved per day)."""


@dataclass(frozen=True)
class Mix:
    """What one simulated day writes."""

    jobs: int
    """Jobs that end that day (completed, or dead-lettered)."""
    resolved: float = 0.01
    """Of ``jobs``: dead-lettered, alerted, redriven, then completed."""
    unresolved: float = 0.002
    """Of ``jobs``: dead-lettered and alerted, never redriven (stay hot)."""

    def counts(self) -> tuple[int, int, int]:
        """(completed, resolved dead letters, unresolved dead letters)."""
        resolved = round(self.jobs * self.resolved)
        unresolved = max(1, round(self.jobs * self.unresolved))
        return self.jobs - resolved - unresolved, resolved, unresolved


@dataclass(frozen=True)
class Templates:
    completed: Events
    resolved: Events
    unresolved: Events
    running: Events


def _stored(container: Any, job_id: UUID) -> Events:
    stored = container.ledger.recorder.select_events(job_id)
    return [(e.originator_version, e.topic, e.state) for e in stored]


def _dead_letter(container: Any, at: datetime) -> tuple[UUID, datetime]:
    """A job that fails every attempt and is alerted; its id and the time after."""
    ledger = container.ledger
    job_id = ledger.execute(EnqueueJob(customer_id="bench"), at).job_id
    version = 0
    for _ in range(3):
        at += timedelta(minutes=5)
        claimed = ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), at)
        version = ledger.execute(FailJob(job_id=job_id, attempt=claimed.attempt,
                                         worker_id="w", error="boom"), at).version
    ledger.execute(RecordAlert(job_id=job_id, dead_letter_version=version, channel="bench",
                               delivery_id="d"), at + timedelta(seconds=30))
    return job_id, at + timedelta(minutes=1)


def templates(container: Any, beats: int) -> Templates:
    """The four kinds of job, each made once through ``container``'s ledger."""
    ledger = container.ledger
    unresolved, _ = _dead_letter(container, OLD)
    resolved, at = _dead_letter(container, OLD)
    ledger.execute(RedriveJob(job_id=resolved, actor="bench"), at)
    claimed = ledger.execute(ClaimJob(job_id=resolved, worker_id="w"), at)
    ledger.execute(CompleteJob(job_id=resolved, attempt=claimed.attempt, worker_id="w"), at)
    running = ledger.execute(EnqueueJob(customer_id="bench"), OLD).job_id
    claimed = ledger.execute(ClaimJob(job_id=running, worker_id="w"), OLD)
    for _ in range(beats):
        ledger.execute(RecordHeartbeat(job_id=running, attempt=claimed.attempt,
                                       worker_id="w"), OLD)
    return Templates(template(container, beats), _stored(container, resolved),
                     _stored(container, unresolved), _stored(container, running))


def on_day(events: Events, day: datetime) -> Events:
    """The template's events moved to ``day`` (the date in their stamps)."""
    text = day.strftime("%Y-%m-%dT").encode()
    return [(v, topic, state.replace(DAY_TEXT, text)) for v, topic, state in events]


def copy_jobs(url: str, batches: Iterable[tuple[Events, int]]) -> list[UUID]:
    """COPY ``count`` copies of each ``events`` under new ids; the ids."""
    ids: list[UUID] = []
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(
        "COPY jobledger_events (originator_id, originator_version, topic, state) FROM STDIN"
    ) as copy:
        for events, count in batches:
            for _ in range(count):
                job_id = uuid4()
                ids.append(job_id)
                for version, topic, state in events:
                    copy.write_row((job_id, version, topic, state))
    return ids


def write_day(url: str, kinds: Templates, mix: Mix, day: datetime, *, running: int = 0,
              only_unresolved: bool = False) -> list[UUID]:
    """One simulated day's jobs (``only_unresolved``: its unresolved dead letters alone);
    the ids of the running jobs."""
    completed, resolved, unresolved = mix.counts()
    batches = [(on_day(kinds.unresolved, day), unresolved)]
    if not only_unresolved:
        batches += [(on_day(kinds.completed, day), completed),
                    (on_day(kinds.resolved, day), resolved)]
    copy_jobs(url, batches)
    return copy_jobs(url, [(on_day(kinds.running, day), running)]) if running else []


def project(backend: Any) -> None:
    """Feed every view to the head with the real runner; the dispatcher has sent all."""
    store = backend.open_views()
    try:
        runner = Runner(store, list(VIEWS.values()))
        runner.acquire()
        try:
            runner.catch_up()
        finally:
            runner.release()
        if runner.failures:
            raise RuntimeError(f"a view stopped: {runner.failures}")
        head = store.head()
        with store.transaction():
            tracking = store.lock_tracking(DISPATCH)
            store.set_tracking(DISPATCH, head, tracking.generation)
    finally:
        store.close()


def hot_table(url: str) -> tuple[int, int]:
    """The events table's rows and bytes (indexes and TOAST included)."""
    with psycopg.connect(url) as conn:
        rows, size = conn.execute(
            "SELECT count(*), pg_total_relation_size('jobledger_events') FROM jobledger_events"
        ).fetchone()  # type: ignore[misc]
    return int(rows), int(size)


def table_bytes(url: str, *tables: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT sum(pg_total_relation_size(t)) FROM unnest(%s::text[]) t",
                           (list(tables),)).fetchone()
    return int(row[0]) if row else 0


def _one(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def events_written(url: str) -> int:
    """Events ever written: the hot rows and the archived ones."""
    return _one(url, "SELECT count(*) FROM jobledger_events") + _one(
        url, "SELECT coalesce(sum(event_count), 0) FROM archive_segments")


def checkpoints_kept(url: str) -> int:
    return _one(url, "SELECT count(*) FROM view_checkpoints")


def autovacuum_stand_in(url: str) -> None:
    """What autovacuum does in the wall-clock days a simulated week stands for (it runs on
    its own clock, so it cannot keep up with simulated time): VACUUM (ANALYZE) the
    tables an archive deletes from, and the views the day's events grew."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("jobledger_events", "jobledger_snapshots", "job_status"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


def view_rows(url: str) -> int:
    """``job_status``'s rows: one per job ever run, archived ones included."""
    return _one(url, "SELECT count(*) FROM job_status")
