"""Stale scan over 100,000 in-progress jobs: the time of one scan of the stale monitor.

The ``job_status`` view is seeded directly with COPY (100,000 jobs in progress, plus
finished ones around them), then analysed as a live table would be. Timed, on the real
schema and its partial index:

- ``JobStatusQueries.in_progress_before`` (the read API the monitor uses, rows decoded);
- ``StaleMonitor.findings()`` (the query plus the monitor's own work, no commands);
- the baseline: the same SQL through plain psycopg with index scans disabled (a
  sequential scan and a sort: what the scan costs without the index).

Two populations: every in-progress job silent for an hour (the scan returns its limit,
1,000 rows), and the usual case, where only 100 of them are silent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.migrate import migrate
from adapters.postgres.store import PostgresViewStore
from adapters.service.bootstrap import utc_now
from adapters.service.monitors import STALE_SCAN_LIMIT, StaleMonitor
from adapters.service.settings import Settings
from bench.common import Figure, fresh_database
from ledger.application import JobLedger
from projections.job_status import JOB_STATUS
from projections.queries.job_status import JobStatusQueries
from tests.support.pg import PostgresServer

COLUMNS = ", ".join(JOB_STATUS.names)
"""Every column of the view, as its declaration has them."""
COPY = f"COPY job_status ({COLUMNS}) FROM STDIN"
SCAN_SQL = (
    f"SELECT {COLUMNS} FROM job_status WHERE status = 'in_progress' "
    "AND last_heartbeat_at < %(before)s ORDER BY last_heartbeat_at LIMIT %(limit)s"
)
THRESHOLD = timedelta(minutes=10)


@dataclass(frozen=True)
class Size:
    in_progress: int
    finished: int
    scans: int  # timed scans per run
    repeats: int


FULL = Size(100_000, 100_000, 30, 3)
QUICK = Size(100_000, 20_000, 10, 2)
TINY = Size(2_000, 500, 3, 1)


def seed(url: str, size: Size, silent: int | None, now: datetime) -> None:
    """``size.in_progress`` jobs in progress (``silent`` of them, or all, an hour quiet)
    and ``size.finished`` completed ones."""
    migrate(url)
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(COPY) as copy:
        for n in range(size.in_progress + size.finished):
            done = n >= size.in_progress
            quiet = silent is None or n < silent
            beat = now - (timedelta(hours=1) if quiet else timedelta(seconds=n % 60))
            beat -= timedelta(microseconds=n)
            started = beat - timedelta(minutes=5)
            copy.write_row(JOB_STATUS.as_tuple({
                "job_id": uuid4(), "customer_id": f"customer-{n % 97}",
                "queue": ("default", "emails", "reports")[n % 3],
                "status": "completed" if done else "in_progress", "attempt": 1,
                "attempts_used": 1, "max_attempts": 3, "worker_id": f"worker-{n % 50}",
                "enqueued_at": started - timedelta(seconds=1), "started_at": started,
                "last_heartbeat_at": beat, "finished_at": beat if done else None,
                "not_before": None, "last_error": None, "heartbeats": 3, "refused_reports": 0,
                "version": 6 if done else 5, "updated_at": beat, "priority": 0,
                "cancel_requested": 0,
            }))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE job_status")


def timed(call: Callable[[], Any], scans: int) -> list[float]:
    call()  # warm: plans cached, pages in memory, as for a monitor that runs every minute
    times = []
    for _ in range(scans):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return times


def scans(url: str, size: Size, label: str, silent: int | None) -> dict[str, list[float]]:
    """Seed a fresh database, then time each way of scanning it: ms lists by name."""
    JobLedger(postgres_env(url)).close()
    now = utc_now()
    seed(url, size, silent, now)
    store = PostgresViewStore(url, EVENTS_TABLE)
    ledger = JobLedger(postgres_env(url))
    try:
        settings = Settings.from_env({"DATABASE_URL": url})
        monitor = StaleMonitor(store, ledger, settings, clock=utc_now, detected_by="bench")
        queries = JobStatusQueries(store)
        before = now - THRESHOLD
        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute("SET enable_indexscan = off")
            raw.execute("SET enable_bitmapscan = off")
            params = {"before": before, "limit": STALE_SCAN_LIMIT}
            plans: dict[str, Callable[[], Any]] = {
                f"JobStatusQueries.in_progress_before, {label}": lambda: (
                    queries.in_progress_before(before, STALE_SCAN_LIMIT)),
                f"StaleMonitor.findings(), {label}": monitor.findings,
                f"baseline: same SQL, no index (psycopg), {label}": lambda: (
                    raw.execute(SCAN_SQL, params).fetchall()),
            }  # fmt: skip
            found = {name: timed(call, size.scans) for name, call in plans.items()}
        rows = len(queries.in_progress_before(before, STALE_SCAN_LIMIT))
        found["rows"] = [float(rows)]
        return found
    finally:
        store.close()
        ledger.close()


def run(server: PostgresServer, size: Size, log: Callable[[str], Any] = print) -> list[Figure]:
    figures: dict[str, Figure] = {}
    populations = [("all silent", None), ("100 silent", 100)]
    for _ in range(size.repeats):
        for label, silent in populations:
            with fresh_database(server, "stale") as url:
                found = scans(url, size, label, silent)
            rows = str(int(found.pop("rows")[0]))
            for name, times in found.items():
                figure = figures.setdefault(name, Figure(name, "ms", notes={"rows": rows}))
                figure.values.append(sorted(times)[len(times) // 2])
                figure.samples.extend(times)
    for figure in figures.values():
        log(f"stale scan: {figure.name}: {figure.spread(1e3)} ms ({figure.notes['rows']} rows)")
    return list(figures.values())
