"""A one-job enqueue's process CPU, before and after ADRs 187 and 188 (issue 19).

``python -m bench.enqueue_one [--blocks 8] [--size 1000] [--clients 1]`` enqueues one job per
``JobLedger.execute`` from one thread on a throwaway PostgreSQL (the "ledger, 1 job per
transaction" row of ``bench.enqueue``) in blocks that alternate between the paths, so
a loaded machine weighs on each alike, and prints the medians (min-max) of the process's
CPU per enqueue (``time.process_time``: the notifier thread included) and of jobs/s:

- before: a new cursor per append, psycopg renders the statement, a NOTIFY per poke;
- ADR 187: the append's cursor kept with its connection, statements rendered once;
- ADR 187 + 188: and the NOTIFY at most once per 2 ms;
- ADR 206: and the NOTIFY sent on the notifier's own connection, not one from the pool.

Not part of ``python -m bench`` (its enqueue section times the paths end to end).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
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


def pooled_send(recorder: Any) -> Callable[[], None]:
    """The NOTIFY as sent before ADR 206: a connection checked out of the pool each time."""

    def send() -> None:
        with recorder.datastore.get_connection() as conn:
            conn.execute(rendered(recorder.notify_statement, conn))

    return send


PATHS: dict[str, tuple[Callable[..., Any], Callable[..., Any], float, bool]] = {
    "before": (new_cursor, composed, 0.0, False),
    "ADR 187": (kept_cursor, rendered, 0.0, False),
    "ADR 187 + 188": (kept_cursor, rendered, GAP_SECONDS, False),
    "ADR 187 + 188 + 206": (kept_cursor, rendered, GAP_SECONDS, True),
}


def block(ledger: JobLedger, size: int, clients: int = 1) -> tuple[float, float]:
    """Process CPU seconds per enqueue and jobs/s of ``size`` one-job enqueues per client
    (``clients`` threads at once)."""

    def client() -> None:
        for n in range(size):
            ledger.execute(EnqueueJob(customer_id="bench", payload={"n": n}), utc_now())

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = size * clients
    return (time.process_time() - cpu) / done, done / (time.perf_counter() - wall)


def run(
    ledger: JobLedger, blocks: int, size: int, clients: int = 1
) -> dict[str, list[tuple[float, float]]]:
    recorder: Any = ledger.recorder
    notifier: Any = recorder.notifier
    own, pooled = notifier._send, pooled_send(recorder)
    block(ledger, 300)  # warm-up: prepared statements, caches
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in PATHS}
    try:
        for _ in range(blocks):
            for name, (cursor, render, gap, own_connection) in PATHS.items():
                setattr(event_recorder, "kept_cursor", cursor)  # noqa: B010
                setattr(event_recorder, "rendered", render)  # noqa: B010
                notifier._gap = gap
                notifier._send = own if own_connection else pooled
                figures[name].append(block(ledger, size, clients))
    finally:
        setattr(event_recorder, "kept_cursor", kept_cursor)  # noqa: B010
        setattr(event_recorder, "rendered", rendered)  # noqa: B010
        notifier._gap, notifier._send = GAP_SECONDS, own
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A one-job enqueue's process CPU")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--size", type=int, default=1000, help="enqueues per client")
    parser.add_argument("--clients", type=int, default=1, help="threads enqueueing at once")
    args = parser.parse_args(argv)
    with start_postgres() as server, fresh_database(server, "one") as url:
        pool = str(args.clients + 1)
        ledger = JobLedger({**postgres_env(url), "POSTGRES_POOL_SIZE": pool})
        try:
            figures = run(ledger, args.blocks, args.size, args.clients)
        finally:
            ledger.close()
    print(f"{args.blocks} alternating blocks of {args.size} one-job enqueues by each of "
          f"{args.clients} thread(s); "
          f"{load_note()} on {os.cpu_count()} CPUs")  # fmt: skip
    print("| path | process CPU per enqueue | jobs/s |\n|---|---:|---:|")
    for name, rows in figures.items():
        cpu, rate = [r[0] * 1e6 for r in rows], [r[1] for r in rows]
        print(f"| {name} | {statistics.median(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f}) µs"
              f" | {statistics.median(rate):,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) |")


if __name__ == "__main__":
    main()
