"""Where a batched enqueue's client CPU goes, step by step (issue 19, ADR 185).

``python -m bench.enqueue_steps [--batches 300] [--size 100]`` enqueues batches of new
jobs with ``JobLedger.execute_batch`` on a throwaway PostgreSQL, one thread, and prints
the CPU time of that thread per job (``time.thread_time``: the commit's wait is not CPU)
for the rows path of ADR 185, with each of its steps, and for the general path (the
decision loop, a job object and a ``StoredEvent`` per job), each without and with the
local queue's outbox (ADR 151, as ``ledger serve`` wires it on PostgreSQL). Paths run
alternately, so a loaded machine weighs on each alike: compare within a run. Not part of
``python -m bench`` (its enqueue section times the paths end to end); figures and their
reading are in docs/benchmarks.md, enqueue.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from bench.common import fresh_database, load_note
from ledger import application, new_jobs
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from tests.support.pg import start_postgres

STEPS = {
    "validation as one list": ("ledger.application", "validate_all"),
    "ids (uuid4s)": ("ledger.new_jobs", "uuid4s"),
    "states and answers (new_job_rows)": ("ledger.new_jobs", "new_job_rows"),
    "queue rows (new_job_outbox)": ("ledger.new_jobs", "new_job_outbox"),
}


class Timed:
    """Thread CPU seconds spent in wrapped callables, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.thread_time() - started

        setattr(owner, attribute, timed)
        self._undo.append(lambda: setattr(owner, attribute, original))

    def undo(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def cpu_per_job(ledger: JobLedger, batches: int, size: int) -> float:
    """Thread CPU seconds per job of ``execute_batch`` over ``batches`` new batches."""
    spent = 0.0
    for _ in range(batches):
        commands = [EnqueueJob(customer_id="bench", payload={"n": n}) for n in range(size)]
        started = time.thread_time()
        ledger.execute_batch(commands, utc_now())
        spent += time.thread_time() - started
    return spent / (batches * size)


def steps(ledger: JobLedger, batches: int, size: int) -> dict[str, float]:
    """The rows path's steps, thread CPU seconds per job."""
    timed = Timed()
    modules = {"ledger.application": application, "ledger.new_jobs": new_jobs}
    for name, (module, attribute) in STEPS.items():
        timed.wrap(modules[module], attribute, name)
    timed.wrap(ledger.recorder, "insert_rows", "recorder.insert_rows (dump, send)")
    timed.wrap(ledger._jobs, "remember_new", "cache (remember_new)")
    try:
        total = cpu_per_job(ledger, batches, size)
    finally:
        timed.undo()
    jobs = batches * size
    return {"total": total, **{k: v / jobs for k, v in timed.seconds.items()}}


def run(container: Container, batches: int, size: int) -> list[tuple[str, float]]:
    ledger = container.ledger
    outbox = ledger.outbox
    ledger.execute(EnqueueJob(customer_id="warm-up"), utc_now())
    rows: list[tuple[str, float]] = []
    for with_outbox in (False, True):
        ledger.outbox = outbox if with_outbox else None
        label = "with the outbox" if with_outbox else "without the outbox"
        for enabled in (True, False, True, False):  # alternately
            ledger._new_jobs.enabled = enabled
            path = "rows path (ADR 185)" if enabled else "general path"
            rows.append((f"{path}, {label}", cpu_per_job(ledger, batches, size)))
        ledger._new_jobs.enabled = True
        for step, value in steps(ledger, batches, size).items():
            rows.append((f"  rows path {label}: {step}", value))
    ledger.outbox = outbox
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A batched enqueue's client CPU by step")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args(argv)
    with start_postgres() as server, fresh_database(server, "steps") as url, \
            tempfile.TemporaryDirectory() as data:
        container = build(Settings(ledger_data_dir=Path(data), database_url=url))
        try:
            rows = run(container, args.batches, args.size)
        finally:
            container.close()
    print(f"batches of {args.size}, {args.batches} per figure, one thread; {load_note()} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    print("| what | client CPU per job |\n|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e6:.1f} µs |")


if __name__ == "__main__":
    main()
