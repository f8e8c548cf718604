"""Burn-down: a backlog of N jobs already waiting, then the workers start; jobs/s until the
last one is done (the shape River and Graphile Worker publish).

- The ledger: ``ledger serve`` and worker processes (``adapters.worker.examples:noop``) on
  the local queue in PostgreSQL. The workers start, reach their receive loop and are
  stopped (SIGSTOP); N jobs are enqueued (batches of 500) and the dispatcher puts them all
  on the local queue (not timed: this is the enqueue, the backlog is then where workers
  take from); then the workers are continued (SIGCONT) together and the clock runs until
  the log holds N ``Completed`` events: claim, run, completion and the queue's delete, each
  job's claim and completion an event.
- Procrastinate on the same server (its own database): N no-op jobs deferred first, then
  its workers, started and waiting at a barrier, are released together and timed until N
  succeeded (the same measurement as the end-to-end's peer, at this size).

``python -m bench.burn_down [--quick]`` prints the figures and refreshes its section of
docs/benchmarks.md.
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

from adapters.service.bootstrap import utc_now
from bench import cpu_split, end_to_end
from bench.common import Figure
from bench.end_to_end import CompletedCount, Fleet, environment, head_of, ledger_database
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from tests.support.pg import PostgresServer, start_postgres

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
TITLE = "## Burn-down: a backlog of jobs, then the workers"
LEDGER_BURN, PEER_BURN = "ledger, local queue on PostgreSQL", "Procrastinate worker"
QUEUED = "SELECT count(*) FROM local_queue_messages WHERE dead_at IS NULL"


@dataclass(frozen=True)
class Size:
    jobs: int
    workers: int  # processes
    concurrency: int  # jobs at once per worker process
    seconds: float  # bound of one run
    repeats: int


FULL = Size(10_000, 2, 8, 300.0, 3)
QUICK = Size(1_000, 2, 8, 120.0, 1)
TINY = Size(100, 1, 4, 60.0, 1)


def backlog(ledger: JobLedger, poll: psycopg.Connection[Any], size: Size) -> None:
    """Enqueue ``size.jobs`` and wait until the dispatcher has queued every one."""
    for first in range(0, size.jobs, 500):
        batch = [EnqueueJob(customer_id="bench", payload={"n": n})
                 for n in range(first, min(size.jobs, first + 500))]  # fmt: skip
        ledger.execute_batch(batch, utc_now())
    deadline = time.monotonic() + size.seconds
    while (queued := int(poll.execute(QUEUED).fetchone()[0])) < size.jobs:  # type: ignore[index]
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {queued} of {size.jobs} jobs reached the queue")
        time.sleep(end_to_end.POLL_SECONDS)


def ledger_runs(server: PostgresServer, size: Size) -> Figure:
    figure = Figure(LEDGER_BURN, "jobs/s")
    split = cpu_split.Split()
    for _ in range(size.repeats):
        with ledger_database(server) as (url, data), \
                Fleet(environment(url, data), data) as fleet, \
                psycopg.connect(url, autocommit=True) as poll:
            served = fleet.serve()
            workers = [fleet.worker("adapters.worker.examples:noop", size.concurrency)
                       for _ in range(size.workers)]  # fmt: skip
            window = cpu_split.Window(end_to_end.ledger_probes(url, served, workers))
            for worker in workers:
                os.kill(worker.pid, signal.SIGSTOP)
            ledger = end_to_end.producer(url)
            try:
                head = head_of(poll)
                backlog(ledger, poll, size)
                completed = CompletedCount(poll, head)
                completed()  # past the backlog's Enqueued events before the clock
                window.start()
                started = time.perf_counter()
                for worker in workers:
                    os.kill(worker.pid, signal.SIGCONT)
                deadline = time.monotonic() + size.seconds
                while (done := completed()) < size.jobs:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {done} of {size.jobs} jobs completed")
                    time.sleep(end_to_end.POLL_SECONDS)
                wall = time.perf_counter() - started
                split.add(window.stop(size.jobs, wall))
                figure.values.append(size.jobs / wall)
            finally:
                ledger.close()
    figure.notes[cpu_split.NOTE] = split.note()
    return figure


def run(server: PostgresServer, size: Size, log: Callable[[str], Any] = print) -> list[Figure]:
    peer_size = end_to_end.Size(size.jobs, size.workers, size.concurrency, size.seconds,
                                size.repeats, 0)  # fmt: skip
    figures = []
    measures: list[Callable[[], Figure]] = [
        lambda: ledger_runs(server, size), lambda: end_to_end.peer_runs(server, peer_size),
    ]
    for measure in measures:
        cpu_split.settle(server.url)  # each side starts on a settled server and machine
        try:
            figure = measure()
        except Exception as error:  # the other still counts
            log(f"burn-down: FAILED: {type(error).__name__}: {error}")
            continue
        log(f"burn-down: {figure.name}: {figure.spread()} {figure.unit}")
        figures.append(figure)
    return figures


def section(figures: list[Figure], size: Size, load: str) -> str:
    by = {f.name: f for f in figures}
    ledger, peer = by.get(LEDGER_BURN), by.get(PEER_BURN)
    lines = [
        f"{size.jobs:,} no-op jobs waiting before any worker runs, {size.repeats} run(s): "
        f"median (min-max); {size.workers} worker processes with concurrency "
        f"{size.concurrency} each on both sides (`python -m bench.burn_down`, module "
        "`bench/burn_down.py`). Ledger: `ledger serve` and its workers started, the workers "
        "stopped (SIGSTOP) while the jobs are enqueued and the dispatcher queues them all, "
        "then continued together: the clock runs from then to the last `Completed` event. "
        "Procrastinate: jobs deferred first, workers released together at a barrier, until "
        f"all succeeded. Machine: {load}.", "",
        "| path | jobs/s | vs Procrastinate |", "|---|---:|---:|",
    ]
    for figure in (ledger, peer):
        if figure is not None:
            ratio = f"{figure.median / peer.median:.2f}x" if peer and peer.median else ""
            lines.append(f"| {figure.name} | {figure.spread()} | {ratio} |")
    if ledger is not None and peer is not None and peer.median:
        times = ledger.median / peer.median
        lines += ["", f"- Burn-down at least 3x Procrastinate's worker: "
                      f"{'met' if times >= 3 else 'MISSED'} ({times:.2f}x)."]
    lines += cpu_lines(figures)
    return "\n".join(lines)


def cpu_lines(figures: list[Figure]) -> list[str]:
    """Where each side's CPU went per job, in the same run (``bench.cpu_split``)."""
    splits = {f.name: cpu_split.Split.from_note(f.notes[cpu_split.NOTE])
              for f in figures if cpu_split.NOTE in f.notes}  # fmt: skip
    if not splits:
        return []
    return ["", "CPU per job over the timed windows, by process group (/proc; \"other work\" "
            "is the rest of the machine's busy time: other people's work on a shared machine):",
            "", *cpu_split.table(splits)]


def load() -> str:
    return f"load average {os.getloadavg()[1]:.1f} (5 min) on {os.cpu_count()} CPUs"


def run_in_suite(server: PostgresServer, mode: str, doc: Path) -> None:
    """``python -m bench``'s step: this mode's size, its section of ``doc``."""
    from bench.__main__ import write_section  # the suite's module, imported when it runs

    size = {"full": FULL, "quick": QUICK}.get(mode, TINY)
    figures = run(server, size)
    write_section(doc, TITLE, section(figures, size, load()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.burn_down")
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
