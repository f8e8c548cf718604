"""The concurrency cap's cost to claims, through the batch writer ``ledger serve`` uses.

``python -m bench.controls_cap [--claims N] [--workers W] [--profile FILE]`` (also the
``cap`` step of ``python -m bench.controls``): N pending jobs on a queue without a cap,
then N on a queue capped above N, are claimed by W threads, each a worker that submits
one ``ClaimJob`` and waits for its answer, through one
:class:`~adapters.service.batching.BatchWriter` (group commit: the path of concurrent
workers' claims over HTTP or in-process). Both queues run in the same process, on the
same database, in the same run; the figure is the capped rate against the free one.
``--profile FILE`` writes a cProfile of the capped run (the writer thread included).
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from bench.projection_rebuild import database
from ledger.commands import AnyCommand, ClaimJob, EnqueueJob, SetQueueLimit
from ledger.errors import LedgerError

WORKERS = 50
"""Concurrent claimers: each waits for its claim's answer before the next."""


def pending_jobs(container: Container, count: int, queue: str) -> list[UUID]:
    ids: list[UUID] = []
    for start in range(0, count, 1000):
        commands: list[AnyCommand] = [EnqueueJob(customer_id="bench", queue=queue)
                                      for _ in range(min(1000, count - start))]
        results = container.ledger.execute_batch(commands, utc_now())
        ids.extend(r.job_id for r in results if not isinstance(r, LedgerError))
    return ids


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile the batch writer's thread (started meanwhile) into ``path``."""
    if path is None:
        yield
        return
    profile = cProfile.Profile()

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
        profile.dump_stats(path)


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


def time_claims(url: str, count: int, workers: int = WORKERS,
                profile: str | None = None) -> dict[str, Any]:
    """Claims/s on a queue without a cap, then on a queue capped above ``count``."""
    container = build(Settings(database_url=url))
    ledger = container.ledger
    runs: dict[str, dict[str, float]] = {}
    try:
        ledger.control_queue(
            SetQueueLimit(queue="capped", actor="bench", max_running=1_000_000), utc_now()
        )
        for queue in ("free", "capped"):
            ids = pending_jobs(container, count, queue)
            ledger.forget()
            with profiled(profile if queue == "capped" else None):
                runs[queue] = claim_all(container, ids, workers)
        capped = ledger.get_queue("capped")
        assert capped is not None
        assert len(capped.running) == count
    finally:
        container.close()
    free, capped_rate = runs["free"]["rate"], runs["capped"]["rate"]
    return {"count": count, "workers": workers, "free": free, "capped": capped_rate,
            "cost": 1 - capped_rate / free, "batch": runs["capped"]["batch"],
            "free_batch": runs["free"]["batch"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--profile", default=None, help="cProfile the capped run into FILE")
    args = parser.parse_args(argv)
    with database() as url:
        figures = time_claims(url, args.claims, args.workers, args.profile)
    print(figures, flush=True)


if __name__ == "__main__":
    main()
