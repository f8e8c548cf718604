"""The CPU a worker spends handing a plain (sync) handler to a thread and back, per job
(issue 19: the event loop's largest step in a py-spy of a burn-down worker).

``python -m bench.handler_hop [--blocks 6] [--jobs 20000] [--concurrency 8]`` runs a
``noop`` function through the hop ``jobs`` times, ``concurrency`` at once (a task per
job, as the worker's slots), in blocks that alternate between two paths so a loaded
machine weighs on each alike, and prints the medians (min-max) of the process's CPU per
job (``time.process_time``, every thread) and of its wall time:

- ``anyio``: ``anyio.to_thread.run_sync`` with ``abandon_on_cancel`` and a capacity
  limiter, as ``adapters/worker/attempt.py`` calls the handler;
- ``executor``: ``loop.run_in_executor`` on a ``ThreadPoolExecutor`` of ``concurrency``
  threads (no cancel scope, no limiter), the lightest stock hop, for comparison.

No PostgreSQL, no ledger: what the hop itself costs. Not part of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.to_thread


def noop(job: int) -> int:
    return job


async def jobs_through(hop: Callable[[int], Awaitable[object]], jobs: int, most: int) -> None:
    """``jobs`` tasks, at most ``most`` hopping at once (the worker's slots)."""
    slots = anyio.Semaphore(most)

    async def one(job: int) -> None:
        async with slots:
            await hop(job)

    async with anyio.create_task_group() as tg:
        for job in range(jobs):
            tg.start_soon(one, job)


async def anyio_path(jobs: int, most: int) -> None:
    limiter = anyio.CapacityLimiter(most)

    async def hop(job: int) -> object:
        return await anyio.to_thread.run_sync(noop, job, abandon_on_cancel=True,
                                              limiter=limiter)  # fmt: skip

    await jobs_through(hop, jobs, most)


async def executor_path(jobs: int, most: int) -> None:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(most) as pool:

        async def hop(job: int) -> object:
            return await loop.run_in_executor(pool, noop, job)

        await jobs_through(hop, jobs, most)


PATHS: dict[str, Callable[[int, int], Awaitable[None]]] = {
    "anyio": anyio_path, "executor": executor_path,
}


def block(path: str, jobs: int, most: int) -> tuple[float, float]:
    """CPU and wall microseconds per job of one block."""
    cpu, wall = time.process_time(), time.perf_counter()
    anyio.run(PATHS[path], jobs, most)
    return (1e6 * (time.process_time() - cpu) / jobs, 1e6 * (time.perf_counter() - wall) / jobs)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.handler_hop")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    seen: dict[str, list[tuple[float, float]]] = {path: [] for path in PATHS}
    for _ in range(args.blocks):
        for path in PATHS:
            seen[path].append(block(path, args.jobs, args.concurrency))
    print(f"load average {os.getloadavg()[0]:.1f}; {args.blocks} blocks of {args.jobs} jobs, "
          f"{args.concurrency} at once", flush=True)  # fmt: skip
    print("| hop | CPU us per job | wall us per job |\n|---|---:|---:|")
    for path, values in seen.items():
        print(f"| {path} | {spread([c for c, _ in values])} | {spread([w for _, w in values])} |")


if __name__ == "__main__":
    main()
