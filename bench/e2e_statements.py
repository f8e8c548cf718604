"""Where PostgreSQL's time goes per end-to-end job: ``pg_stat_statements`` over one run.

A throwaway cluster from the local binaries with ``pg_stat_statements`` preloaded (it ships
with the server), ``ledger serve`` and two ``noop`` workers on the local queue as in
:mod:`bench.end_to_end`; the statistics are reset once the fleet is idle, N jobs are
enqueued (batches of 500) and completed, and each statement's calls and server time are
divided by N. A second window, the fleet idle for a few seconds, gives what the parts cost
per second when there is nothing to do (polls).

``python -m bench.e2e_statements [--jobs N] [--idle SECONDS] [--top K]`` prints both
tables (markdown); nothing is written to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from adapters.postgres.backend import postgres_env
from adapters.service.bootstrap import utc_now
from bench.end_to_end import CompletedCount, Fleet, environment, head_of, ledger_database
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from tests.support.pg import LocalCluster, find_bindir, start_postgres

PRELOAD = (
    "\n# bench.e2e_statements\n"
    "shared_preload_libraries = 'pg_stat_statements'\n"
    "pg_stat_statements.track = 'all'\n"
    "pg_stat_statements.max = 5000\n"
)
STATEMENTS = (
    "SELECT s.query, s.calls, s.total_exec_time AS ms, s.rows FROM pg_stat_statements s "
    "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s ORDER BY s.total_exec_time DESC"
)
RESET = "SELECT pg_stat_statements_reset()"
ENQUEUE_BATCH = 500
DEADLINE_SECONDS = 180.0


@dataclass(frozen=True)
class Statement:
    query: str
    calls: int
    ms: float
    rows: int


@contextmanager
def profiled_cluster() -> Iterator[LocalCluster]:
    """A local cluster with pg_stat_statements loaded (restarted once after initdb)."""
    if find_bindir() is None:
        raise SystemExit("bench.e2e_statements needs the local PostgreSQL server binaries")
    saved = os.environ.pop("DATABASE_URL", None)
    try:
        server = start_postgres()
    finally:
        if saved is not None:
            os.environ["DATABASE_URL"] = saved
    assert isinstance(server, LocalCluster)
    with server:
        with (server.datadir / "postgresql.conf").open("a") as conf:
            conf.write(PRELOAD)
        server.restart()
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield server


def snapshot(admin: psycopg.Connection[Any], database: str) -> list[Statement]:
    with admin.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(STATEMENTS, (database,)).fetchall()
    return [Statement(" ".join(r["query"].split()), r["calls"], r["ms"], r["rows"]) for r in rows]


def measure(jobs: int, idle: float) -> tuple[list[Statement], list[Statement], float]:
    """(statements of the run, statements of the idle window, the run's seconds)."""
    with profiled_cluster() as server, ledger_database(server) as (url, data), \
            Fleet(environment(url, data), data) as fleet, \
            psycopg.connect(url, autocommit=True) as poll, \
            psycopg.connect(server.url, autocommit=True) as admin:
        database = poll.info.dbname
        fleet.serve()
        for _ in range(2):
            fleet.worker("adapters.worker.examples:noop", 8)
        ledger = JobLedger(postgres_env(url))
        try:
            time.sleep(2.0)  # the parts' start-up reads are not the run's
            admin.execute(RESET)
            time.sleep(idle)
            quiet = snapshot(admin, database)
            admin.execute(RESET)
            head, started = head_of(poll), time.perf_counter()
            for first in range(0, jobs, ENQUEUE_BATCH):
                batch = [EnqueueJob(customer_id="bench", payload={"n": n})
                         for n in range(first, min(jobs, first + ENQUEUE_BATCH))]  # fmt: skip
                ledger.execute_batch(batch, utc_now())
            deadline = time.monotonic() + DEADLINE_SECONDS
            completed = CompletedCount(poll, head)
            while (done := completed()) < jobs:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {done} of {jobs} jobs completed")
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            busy = snapshot(admin, database)
        finally:
            ledger.close()
    return busy, quiet, seconds


def short(query: str, width: int = 110) -> str:
    text = re.sub(r"\s+", " ", query).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def table(statements: list[Statement], per: float, unit: str, top: int) -> str:
    calls = sum(s.calls for s in statements)
    total = sum(s.ms for s in statements)
    lines = [
        f"| statement | calls {unit} | ms {unit} | share |", "|---|---:|---:|---:|",
    ]
    for s in statements[:top]:
        lines.append(f"| `{short(s.query)}` | {s.calls / per:.2f} | {s.ms / per:.3f} | "
                     f"{s.ms / total:.0%} |" if total else "| | | | |")  # fmt: skip
    lines.append(f"| all {len(statements)} statements | {calls / per:.2f} | {total / per:.3f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_statements")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    busy, quiet, seconds = measure(args.jobs, args.idle)
    load = os.getloadavg()[1]
    print(f"{args.jobs} jobs in {seconds:.1f} s ({args.jobs / seconds:.0f} jobs/s), "
          f"load average {load:.1f} on {os.cpu_count()} CPUs\n")  # fmt: skip
    print(table(busy, args.jobs, "per job", args.top))
    print(f"\nIdle for {args.idle:.0f} s, per second:\n")
    print(table(quiet, args.idle, "per s", args.top))


if __name__ == "__main__":
    main()
