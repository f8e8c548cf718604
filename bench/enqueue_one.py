"""A one-job enqueue's process CPU, before and after ADRs 187 and 188 (issue 19).

``python -m bench.enqueue_one [--blocks 8] [--size 1000]`` enqueues one job per
``JobLedger.execute`` from one thread on a throwaway PostgreSQL (the "ledger, 1 job per
transaction" row of ``bench.enqueue``) in blocks that alternate between the paths, so
a loaded machine weighs on each alike, and prints the medians (min-max) of the process's
CPU per enqueue (``time.process_time``: the notifier thread included) and of jobs/s:

- before: a new cursor per append, psycopg renders the statement, a NOTIFY per poke;
- ADR 187: the append's cursor kept with its connection, statements rendered once;
- ADR 187 + 188: and the NOTIFY at most once per 2 ms.

Not part of ``python -m bench`` (its enqueue section times the paths end to end).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from adapters.postgres import event_recorder
from adapters.postgres.append_cursor import kept_cursor, rendered
from adapters.postgres.backend import postgres_env
from adapters.postgres.notifier import GAP_SECONDS
from adapters.service.bootstrap import utc_now
from bench.common import fresh_database, load_note
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from tests.support.pg import start_postgres


def new_cursor(conn: psycopg.Connection[Any], query: Any) -> psycopg.Cursor[tuple[Any, ...]]:
    return conn.cursor(row_factory=tuple_row)


def composed(statement: sql.Composable, conn: psycopg.Connection[Any]) -> sql.Composable:
    return statement


PATHS: dict[str, tuple[Callable[..., Any], Callable[..., Any], float]] = {
    "before": (new_cursor, composed, 0.0),
    "ADR 187": (kept_cursor, rendered, 0.0),
    "ADR 187 + 188": (kept_cursor, rendered, GAP_SECONDS),
}


def block(ledger: JobLedger, size: int) -> tuple[float, float]:
    """Process CPU seconds per enqueue and jobs/s of ``size`` one-job enqueues."""
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(size):
        ledger.execute(EnqueueJob(customer_id="bench", payload={"n": n}), utc_now())
    return (time.process_time() - cpu) / size, size / (time.perf_counter() - wall)


def run(ledger: JobLedger, blocks: int, size: int) -> dict[str, list[tuple[float, float]]]:
    notifier: Any = getattr(ledger.recorder, "notifier")  # noqa: B009
    block(ledger, 300)  # warm-up: prepared statements, caches
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in PATHS}
    try:
        for _ in range(blocks):
            for name, (cursor, render, gap) in PATHS.items():
                setattr(event_recorder, "kept_cursor", cursor)  # noqa: B010
                setattr(event_recorder, "rendered", render)  # noqa: B010
                notifier._gap = gap
                figures[name].append(block(ledger, size))
    finally:
        setattr(event_recorder, "kept_cursor", kept_cursor)  # noqa: B010
        setattr(event_recorder, "rendered", rendered)  # noqa: B010
        notifier._gap = GAP_SECONDS
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A one-job enqueue's process CPU")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args(argv)
    with start_postgres() as server, fresh_database(server, "one") as url:
        ledger = JobLedger({**postgres_env(url), "POSTGRES_POOL_SIZE": "2"})
        try:
            figures = run(ledger, args.blocks, args.size)
        finally:
            ledger.close()
    print(f"{args.blocks} alternating blocks of {args.size} one-job enqueues, one thread; "
          f"{load_note()} on {os.cpu_count()} CPUs")  # fmt: skip
    print("| path | process CPU per enqueue | jobs/s |\n|---|---:|---:|")
    for name, rows in figures.items():
        cpu, rate = [r[0] * 1e6 for r in rows], [r[1] for r in rows]
        print(f"| {name} | {statistics.median(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f}) µs"
              f" | {statistics.median(rate):,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) |")


if __name__ == "__main__":
    main()
