"""Projection rebuild benchmark (issue 3): ``job_status`` rebuilt from a big log.

``python -m bench.projection_rebuild [--events N] [--baseline-events M]`` starts a
throwaway PostgreSQL with durable commits (or uses ``DATABASE_URL``), writes a log of N
job events (default 1,000,000: realistic job lives, interleaved across thousands of jobs)
straight into eventsourcing's events table with COPY, then measures on that same log:

- ``ledger projections rebuild job_status``'s path (:func:`projections.rebuild.rebuild`):
  pages of raw rows decoded with msgspec, folded in memory, written with multi-row
  upserts into a shadow table, swapped in;
- eventsourcing's own ``ProjectionRunner`` with an idiomatic ``Projection`` that updates
  the same table shape and its tracking row in one transaction per event, over the first
  M events of the log (default 20,000: at its rate the whole log would take many minutes).

It prints the figures and writes them into docs/benchmarks.md under its own section,
leaving the file's other sections alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import get_topic
from psycopg import sql

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.migrate import migrate
from adapters.postgres.store import PostgresViewStore
from bench.common import load_note
from ledger.application import JobLedger
from ledger.job import Job
from projections.job_status import JobStatusView
from projections.rebuild import rebuild
from tests.support.pg import start_postgres

SECTION = "## Projection rebuild"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
COPY_EVENTS = sql.SQL(
    "COPY {table} (originator_id, originator_version, topic, state) FROM STDIN"
).format(table=sql.Identifier(EVENTS_TABLE))
COUNT_EVENTS = sql.SQL("SELECT count(*) FROM {table}").format(table=sql.Identifier(EVENTS_TABLE))
VACUUM_EVENTS = sql.SQL("VACUUM ANALYZE {table}").format(table=sql.Identifier(EVENTS_TABLE))
DURABILITY = (
    "SELECT name, setting FROM pg_settings "
    "WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes') ORDER BY name"
)
WAVE = 2_000
"""Jobs alive at once in the generated log: each job's events are spread over a wave."""

_encode = msgspec.json.Encoder().encode


def _stamp(at: datetime) -> dict[str, str]:
    return {"_type_": "datetime_iso", "_data_": at.isoformat()}


TOPIC = {name: get_topic(getattr(Job, name)) for name in (
    "Enqueued", "Claimed", "HeartbeatRecorded", "Completed", "Failed", "Requeued",
)}
JOB_TOPIC = get_topic(Job)


def job_life(n: int) -> list[tuple[str, dict[str, Any]]]:
    """The events of job ``n`` (without timestamps): 9 events, one in ten fails once."""
    worker = f"worker-{n % 50}"
    life: list[tuple[str, dict[str, Any]]] = [
        ("Enqueued", {"originator_topic": JOB_TOPIC, "customer_id": f"customer-{n % 97}",
                      "queue": ("default", "emails", "reports")[n % 3],
                      "payload": {"n": n}, "max_attempts": 3, "idempotency_key": None,
                      "priority": 0, "run_at": None}),
        ("Claimed", {"attempt": 1, "worker_id": worker, "worker_time": None}),
    ]
    beat = ("HeartbeatRecorded", {"attempt": 1, "worker_id": worker, "worker_time": None})
    if n % 10 == 0:
        life += [
            beat,
            ("Failed", {"attempt": 1, "worker_id": worker, "error": "Timeout",
                        "worker_time": None}),
            ("Requeued", {"attempt": 1, "reason": "failed", "not_before": None}),
            ("Claimed", {"attempt": 2, "worker_id": worker, "worker_time": None}),
        ]
        attempt = 2
    else:
        life += [beat] * 4
        attempt = 1
    beat = ("HeartbeatRecorded", {"attempt": attempt, "worker_id": worker, "worker_time": None})
    life += [beat, beat, ("Completed", {"attempt": attempt, "worker_id": worker,
                                         "result": None, "worker_time": None})]
    return life


def generate(events: int, start: datetime) -> Iterator[tuple[uuid.UUID, int, str, bytes]]:
    """Rows of a log of ``events`` events: waves of jobs whose lives interleave."""
    written, n, at = 0, 0, start
    while written < events:
        wave = [(uuid.uuid4(), job_life(n + i)) for i in range(WAVE)]
        n += WAVE
        for step in range(max(len(life) for _, life in wave)):
            for job_id, life in wave:
                if step >= len(life) or written >= events:
                    continue
                name, fields = life[step]
                at += timedelta(microseconds=37)
                state = _encode({"timestamp": _stamp(at), **fields})
                yield job_id, step + 1, TOPIC[name], state
                written += 1


def write_log(url: str, events: int) -> float:
    """COPY a generated log into the events table; returns seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(COPY_EVENTS) as copy:
        for row in generate(events, datetime(2026, 1, 5, 9, 0, tzinfo=UTC)):
            copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(VACUUM_EVENTS)  # as a long-lived table would be
    return time.perf_counter() - started


# -- the baseline: eventsourcing's ProjectionRunner, one transaction per event -----------------

BASELINE_TABLE = "job_status_baseline"
CREATE_BASELINE = sql.SQL("CREATE TABLE IF NOT EXISTS {t} (LIKE job_status INCLUDING ALL)")
B = sql.Identifier(BASELINE_TABLE)
BASELINE_SQL: dict[str, sql.Composed] = {
    "Enqueued": sql.SQL(
        "INSERT INTO {t} (job_id, customer_id, queue, status, attempt, attempts_used, "
        "max_attempts, enqueued_at, heartbeats, refused_reports, version, updated_at, "
        "priority, cancel_requested) "
        "VALUES (%(id)s, %(customer_id)s, %(queue)s, 'pending', 0, 0, %(max_attempts)s, %(at)s, "
        "0, 0, %(v)s, %(at)s, %(priority)s, 0)"
    ).format(t=B),
    "Claimed": sql.SQL(
        "UPDATE {t} SET status = 'in_progress', attempt = %(attempt)s, "
        "attempts_used = attempts_used + 1, worker_id = %(worker_id)s, started_at = %(at)s, "
        "last_heartbeat_at = %(at)s, not_before = NULL, version = %(v)s, updated_at = %(at)s "
        "WHERE job_id = %(id)s"
    ).format(t=B),
    "HeartbeatRecorded": sql.SQL(
        "UPDATE {t} SET last_heartbeat_at = %(at)s, heartbeats = heartbeats + 1, "
        "version = %(v)s, updated_at = %(at)s WHERE job_id = %(id)s"
    ).format(t=B),
    "Completed": sql.SQL(
        "UPDATE {t} SET status = 'completed', finished_at = %(at)s, version = %(v)s, "
        "updated_at = %(at)s WHERE job_id = %(id)s"
    ).format(t=B),
    "Failed": sql.SQL(
        "UPDATE {t} SET status = 'pending', last_error = %(error)s, version = %(v)s, "
        "updated_at = %(at)s WHERE job_id = %(id)s"
    ).format(t=B),
    "Requeued": sql.SQL(
        "UPDATE {t} SET status = 'pending', worker_id = NULL, not_before = %(not_before)s, "
        "version = %(v)s, updated_at = %(at)s WHERE job_id = %(id)s"
    ).format(t=B),
}


class BaselineView(PostgresTrackingRecorder):
    """A materialised view: one statement and its tracking row per transaction."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.append(CREATE_BASELINE.format(t=B))

    def apply(self, name: str, params: dict[str, Any], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(BASELINE_SQL[name], params)
            self._insert_tracking(curs, tracking)


class BaselineProjection(Projection[BaselineView]):
    name = "job_status_baseline"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        event: Job.Event = domain_event
        name = type(event).__qualname__.removeprefix("Job.")
        params = {"id": event.originator_id, "v": event.originator_version,
                  "at": event.timestamp, "priority": 0, **vars(event)}
        self.view.apply(name, params, tracking)


def run_baseline(url: str, events: int, budget: float) -> tuple[int, float]:
    """Feed the baseline projection for ``events`` events (or ``budget`` seconds)."""
    env = {**postgres_env(url), "ORIGINATOR_ID_TYPE": "uuid"}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CREATE_BASELINE.format(t=B))
    runner: ProjectionRunner[JobLedger, BaselineView] = ProjectionRunner(
        application_class=JobLedger, projection_class=BaselineProjection,
        view_class=BaselineView, env=env,
    )
    with runner:
        started = time.perf_counter()
        deadline = started + budget
        done = 0
        while time.perf_counter() < deadline:
            done = runner.view.max_tracking_id("JobLedger") or 0
            if done >= events:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        runner.stop()
    return done, elapsed


# -- the run ------------------------------------------------------------------------------


@contextmanager
def database() -> Iterator[str]:
    with start_postgres() as server:
        name = f"bench_rebuild_{uuid.uuid4().hex[:8]}"
        url = server.create_database(name)
        try:
            yield url
        finally:
            server.drop_database(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    parser.add_argument("--baseline-seconds", type=float, default=120.0)
    parser.add_argument("--page-size", type=int, default=20_000)
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = "python -m bench.projection_rebuild" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    with database() as url:
        JobLedger(postgres_env(url)).close()  # eventsourcing's tables
        migrate(url)
        print(f"writing {args.events:,} events ...", flush=True)
        wrote = write_log(url, args.events)
        with psycopg.connect(url) as conn:
            count = conn.execute(COUNT_EVENTS).fetchone()
            settings: dict[str, str] = dict(conn.execute(DURABILITY).fetchall())
        total = int(count[0]) if count else 0
        print(f"  {total:,} events in {wrote:.1f}s; durability {settings}", flush=True)

        store = PostgresViewStore(url, EVENTS_TABLE)
        reader = PostgresViewStore(url, EVENTS_TABLE)  # as `ledger projections rebuild` does
        started = time.perf_counter()
        result = rebuild(store, JobStatusView(), page_size=args.page_size, reader=reader)
        rebuilt = time.perf_counter() - started
        reader.close()
        rows = store.count(JobStatusView.tables[0], "")
        store.close()
        rate = result.events / rebuilt
        print(f"rebuild: {result.events:,} events in {rebuilt:.2f}s = {rate:,.0f} events/s "
              f"({rows:,} rows)", flush=True)

        done, elapsed = run_baseline(url, args.baseline_events, args.baseline_seconds)
        base_rate = done / elapsed if elapsed else 0.0
        print(f"eventsourcing ProjectionRunner: {done:,} events in {elapsed:.2f}s = "
              f"{base_rate:,.0f} events/s", flush=True)
    ratio = rate / base_rate if base_rate else float("inf")
    print(f"ratio: {ratio:,.1f}x")
    if not args.no_doc:
        write_section(DOC, _section(
            command, total=total, rebuilt=rebuilt, rate=rate, rows=rows, done=done,
            elapsed=elapsed, base_rate=base_rate, ratio=ratio, settings=settings,
            page=args.page_size,
        ))
        print(f"wrote the '{SECTION}' section of {DOC}")


def _section(
    command: str, *, total: int, rebuilt: float, rate: float, rows: int, done: int,
    elapsed: float, base_rate: float, ratio: float, settings: dict[str, str], page: int,
) -> str:
    cpus = os.cpu_count()
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {cpus} CPUs, "
        f"PostgreSQL with {', '.join(f'{k}={v}' for k, v in settings.items())}; the "
        "benchmark and the server share the machine ("
        f"{load_note()}).", "",
        f"The log: {total:,} job events (enqueue, claim, heartbeats, failures and requeues, "
        f"completion; {WAVE:,} jobs alive at a time), written with COPY.", "",
        "| path | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        f"| `ledger projections rebuild job_status` (pages of {page:,} raw rows, msgspec, "
        f"multi-row upserts into a shadow table, swap) | {total:,} | {rebuilt:.2f} | "
        f"**{rate:,.0f}** |",
        f"| eventsourcing `ProjectionRunner`, one transaction per event (first {done:,} "
        f"events of the same log) | {done:,} | {elapsed:.2f} | {base_rate:,.0f} |",
        "",
        f"Rebuild vs ProjectionRunner: **{ratio:,.1f}x**. The bar is 50,000 events/s; "
        f"the rebuilt table has {rows:,} rows.", "",
    ])


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
