"""Claims in one round trip (issue 19, ADR 155): the same fleet with its workers claiming
and reporting in batches against one job per call, in the same run.

- End to end: ``ledger serve`` and two ``ledger worker`` processes (no-op handler,
  concurrency 8) on the local queue in PostgreSQL; N jobs enqueued (batches of 500) and
  timed until the log holds N ``Completed`` events (as ``bench.end_to_end``).
- Burn-down: the workers stopped (SIGSTOP) while N jobs are enqueued and queued, then
  continued together and timed until N completed (as ``bench.burn_down``).

Each is run with ``--no-batch-claims`` workers (receive, claim, report, delete: one call
each per job) and with the default (claim up to N in one transaction, reports in batches
deleting their messages), alternately, so both see the same machine.

``python -m bench.claims [--quick|--tiny] [--no-doc]`` prints the figures and refreshes
its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from adapters.postgres.backend import postgres_env
from adapters.service.bootstrap import utc_now
from bench import end_to_end
from bench.burn_down import backlog
from bench.common import Figure
from bench.end_to_end import CompletedCount, Fleet, environment, head_of, ledger_database
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from tests.support.pg import PostgresServer, start_postgres

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
TITLE = "## Claims in one round trip: batches against one job per call"
NOOP = "adapters.worker.examples:noop"


@dataclass(frozen=True)
class Size:
    e2e_jobs: int
    burn_jobs: int
    workers: int  # processes
    concurrency: int  # jobs at once per worker process
    seconds: float  # bound of one run
    repeats: int


FULL = Size(3000, 10_000, 2, 8, 300.0, 3)
QUICK = Size(1000, 2000, 2, 8, 120.0, 1)
TINY = Size(100, 100, 1, 4, 60.0, 1)
MODES = {True: "batches (default)", False: "one job per call (--no-batch-claims)"}


def workers(fleet: Fleet, size: Size, batch: bool) -> list[Any]:
    flag = () if batch else ("--no-batch-claims",)
    return [
        fleet.start("worker", "--handler", NOOP, "--concurrency", str(size.concurrency),
                    "--log-level", "warning", *flag, ready=" running ")
        for _ in range(size.workers)
    ]  # fmt: skip


def until_completed(poll: psycopg.Connection[Any], head: int, jobs: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    completed = CompletedCount(poll, head)
    while (done := completed()) < jobs:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {jobs} jobs completed")
        time.sleep(end_to_end.POLL_SECONDS)


def e2e_once(server: PostgresServer, size: Size, batch: bool) -> float:
    with ledger_database(server) as (url, data), Fleet(environment(url, data), data) as fleet, \
            psycopg.connect(url, autocommit=True) as poll:
        fleet.serve()
        workers(fleet, size, batch)
        ledger = JobLedger(postgres_env(url))
        try:
            head = head_of(poll)
            started = time.perf_counter()
            for first in range(0, size.e2e_jobs, 500):
                ledger.execute_batch([
                    EnqueueJob(customer_id="bench", payload={"n": n})
                    for n in range(first, min(size.e2e_jobs, first + 500))
                ], utc_now())
            until_completed(poll, head, size.e2e_jobs, size.seconds)
            return size.e2e_jobs / (time.perf_counter() - started)
        finally:
            ledger.close()


def burn_once(server: PostgresServer, size: Size, batch: bool) -> float:
    with ledger_database(server) as (url, data), Fleet(environment(url, data), data) as fleet, \
            psycopg.connect(url, autocommit=True) as poll:
        fleet.serve()
        stopped = workers(fleet, size, batch)
        for worker in stopped:
            os.kill(worker.pid, signal.SIGSTOP)
        ledger = JobLedger(postgres_env(url))
        try:
            head = head_of(poll)
            backlog(ledger, poll, burn_size(size))
            started = time.perf_counter()
            for worker in stopped:
                os.kill(worker.pid, signal.SIGCONT)
            until_completed(poll, head, size.burn_jobs, size.seconds)
            return size.burn_jobs / (time.perf_counter() - started)
        finally:
            ledger.close()


def burn_size(size: Size) -> Any:
    from bench.burn_down import Size as BurnSize

    return BurnSize(size.burn_jobs, size.workers, size.concurrency, size.seconds, 1)


def run(server: PostgresServer, size: Size, log: Callable[[str], Any] = print) -> list[Figure]:
    """Four figures: end to end and burn-down, each in both modes, runs alternating."""
    figures = {(kind, batch): Figure(f"{kind}, {MODES[batch]}", "jobs/s")
               for kind in ("end to end", "burn-down") for batch in (False, True)}  # fmt: skip
    measures = {"end to end": e2e_once, "burn-down": burn_once}
    for _ in range(size.repeats):
        for kind, measure in measures.items():
            for batch in (False, True):
                try:
                    value = measure(server, size, batch)
                except Exception as error:  # the other figures still count
                    log(f"claims: {kind}, {MODES[batch]}: FAILED: {error}")
                    continue
                log(f"claims: {kind}, {MODES[batch]}: {value:,.0f} jobs/s")
                figures[kind, batch].values.append(value)
    return [figure for figure in figures.values() if figure.values]


def section(figures: list[Figure], size: Size, load: str) -> str:
    by = {f.name: f for f in figures}
    lines = [
        f"`python -m bench.claims` (module `bench/claims.py`): {size.workers} `ledger worker` "
        f"processes (no-op, concurrency {size.concurrency}) and `ledger serve` on the local "
        f"queue in PostgreSQL; end to end {size.e2e_jobs:,} jobs (enqueue to the last "
        f"`Completed`), burn-down {size.burn_jobs:,} jobs waiting before the workers "
        f"continue; {size.repeats} run(s) of each, median (min-max), the two modes "
        f"alternating in the same run. Machine: {load}.", "",
        "| path | one job per call | batches | ratio |", "|---|---:|---:|---:|",
    ]
    for kind in ("end to end", "burn-down"):
        before = by.get(f"{kind}, {MODES[False]}")
        after = by.get(f"{kind}, {MODES[True]}")
        if before is None or after is None:
            continue
        ratio = after.median / before.median if before.median else 0.0
        lines.append(f"| {kind} | {before.spread()} | {after.spread()} | {ratio:.2f}x |")
    return "\n".join(lines)


def load() -> str:
    return f"load average {os.getloadavg()[1]:.1f} (5 min) on {os.cpu_count()} CPUs"


def run_in_suite(server: PostgresServer, mode: str, doc: Path) -> None:
    """``python -m bench``'s step: this mode's size, its section of ``doc``."""
    from bench.__main__ import write_section

    size = {"full": FULL, "quick": QUICK}.get(mode, TINY)
    write_section(doc, TITLE, section(run(server, size), size, load()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.claims")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args(argv)
    size = TINY if args.tiny else QUICK if args.quick else FULL
    with start_postgres() as server:
        figures = run(server, size)
    text = section(figures, size, load())
    print(text)
    if not args.no_doc:
        from bench.__main__ import write_section

        write_section(DOC, TITLE, text)


if __name__ == "__main__":
    main()
