"""The concurrency cap's cost to claims, through the batch writer ``ledger serve`` uses.

``python -m bench.controls_cap [--claims N] [--workers W] [--rounds R] [--profile FILE]``
(also the ``cap`` step of ``python -m bench.controls``): N pending jobs on a queue without
a cap and N on a queue capped above every claim are claimed by W threads, each a worker
that submits one ``ClaimJob`` and waits for its answer, through one
:class:`~adapters.service.batching.BatchWriter` (group commit: the path of concurrent
workers' claims over HTTP or in-process). R rounds alternate which queue goes first
(free, capped; capped, free; ...) in the same process on the same database; the figure is
the median capped rate against the median free one, so a burst of load from other work
on the machine weighs on both (``paired_cost``: the median of each round's own cost).
The process is tuned as ``ledger serve`` tunes itself (``tune_for_serving``: GIL switch
interval, GC thresholds). ``--profile FILE`` writes a cProfile of the writer thread's
CPU time (``time.thread_time``) during the capped runs.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from adapters.http.server import tune_for_serving
from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from bench.projection_rebuild import database
from ledger.commands import AnyCommand, ClaimJob, EnqueueJob, SetQueueLimit
from ledger.errors import LedgerError

WORKERS = 50
"""Concurrent claimers: each waits for its claim's answer before the next."""
ROUNDS = 3
"""Runs of each queue, alternating which goes first."""


def pending_jobs(container: Container, count: int, queue: str) -> list[UUID]:
    ids: list[UUID] = []
    for start in range(0, count, 1000):
        commands: list[AnyCommand] = [EnqueueJob(customer_id="bench", queue=queue)
                                      for _ in range(min(1000, count - start))]
        results = container.ledger.execute_batch(commands, utc_now())
        ids.extend(r.job_id for r in results if not isinstance(r, LedgerError))
    return ids


@contextmanager
def serving_process() -> Iterator[None]:
    """The process tuned as ``ledger serve`` tunes itself; as it was afterwards."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    tune_for_serving()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@contextmanager
def profiled(path: str | None, *, append: bool = False) -> Iterator[None]:
    """cProfile the batch writer's thread (started meanwhile) into ``path``."""
    if path is None:
        yield
        return
    profile = cProfile.Profile(time.thread_time)

    def start(*_: object) -> None:
        if threading.current_thread().name == "ledger-batch-writer":
            profile.enable(subcalls=True, builtins=True)
        else:
            sys.setprofile(None)

    threading.setprofile(start)
    try:
        yield
    finally:
        threading.setprofile(None)
        profile.disable()
        stats = pstats.Stats(profile)
        if append and os.path.exists(path):
            stats.add(path)
        stats.dump_stats(path)


def claim_all(container: Container, ids: Sequence[UUID], workers: int) -> dict[str, float]:
    """Claim every job through one batch writer from ``workers`` threads."""
    writer = BatchWriter(container.ledger, utc_now,
                         max_batch=container.settings.ledger_batch_max)
    refused: list[LedgerError] = []

    def claim(job_id: UUID) -> None:
        result = writer.submit(ClaimJob(job_id=job_id, worker_id="bench")).result(120)
        if isinstance(result, LedgerError):
            refused.append(result)

    with writer, ThreadPoolExecutor(workers) as pool:
        began = time.perf_counter()
        list(pool.map(claim, ids))
        seconds = time.perf_counter() - began
    assert not refused, refused[:1]
    return {"rate": len(ids) / seconds, "batch": writer.commands / max(writer.batches, 1)}


def run_rounds(
    container: Container, count: int, *, workers: int, rounds: int, profile: str | None
) -> dict[str, list[dict[str, float]]]:
    """``rounds`` runs of each queue, alternating which goes first."""
    runs: dict[str, list[dict[str, float]]] = {"free": [], "capped": []}
    for n in range(rounds):
        for queue in ("free", "capped") if n % 2 == 0 else ("capped", "free"):
            ids = pending_jobs(container, count, queue)
            container.ledger.forget()
            with profiled(profile if queue == "capped" else None, append=n > 0):
                runs[queue].append(claim_all(container, ids, workers))
    return runs


def time_claims(url: str, count: int, workers: int = WORKERS, rounds: int = ROUNDS,
                profile: str | None = None) -> dict[str, Any]:
    """Claims/s on a queue without a cap and on a queue with one, ``rounds`` times each."""
    container = build(Settings(database_url=url))
    ledger = container.ledger
    try:
        ledger.control_queue(
            SetQueueLimit(queue="capped", actor="bench", max_running=10 * count * rounds),
            utc_now(),
        )
        with serving_process():
            runs = run_rounds(container, count, workers=workers, rounds=rounds,
                              profile=profile)
        capped = ledger.get_queue("capped")
        assert capped is not None
        assert len(capped.running) == count * rounds
    finally:
        container.close()
    free = statistics.median(r["rate"] for r in runs["free"])
    capped_rate = statistics.median(r["rate"] for r in runs["capped"])
    return {"count": count, "workers": workers, "rounds": rounds, "free": free,
            "capped": capped_rate, "cost": 1 - capped_rate / free,
            "batch": statistics.mean(r["batch"] for r in runs["capped"]),
            "free_batch": statistics.mean(r["batch"] for r in runs["free"]),
            "paired_cost": statistics.median(
                1 - c["rate"] / f["rate"] for f, c in zip(runs["free"], runs["capped"],
                                                          strict=True)),
            "free_runs": [round(r["rate"]) for r in runs["free"]],
            "capped_runs": [round(r["rate"]) for r in runs["capped"]]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--profile", default=None, help="cProfile the capped run into FILE")
    args = parser.parse_args(argv)
    with database() as url:
        figures = time_claims(url, args.claims, args.workers, args.rounds, args.profile)
    print(figures, flush=True)


if __name__ == "__main__":
    main()
