"""``python -m bench.tracing [--quick]``: end-to-end throughput with tracing on against
tracing off, in the same run (issue 18, ADR 125; bar: within 10%).

One process on a throwaway PostgreSQL with durable commits: ``LocalClient.enqueue_many``
(batches of 500, inside a producer span) -> the log -> the dispatcher -> the local queue
-> SDK workers (in-process port, an async no-op handler) -> completion; timed from the
first enqueue to the last completion the workers counted. *Off* is the path without the
extra (``adapters.tracing.otel`` holds ``None``, as when OpenTelemetry is not installed);
*on* is OpenTelemetry's SDK with its in-memory exporter behind the batch span processor
(the SDK's production setting: a span ends into a queue, a thread exports), every span of
every job made (``job.enqueued``, ``job.dispatch``, ``job.attempt``) and counted. Runs
alternate off, on, on, off... so a drift of the shared machine falls on both.

Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.service.bootstrap import Container, build, build_transport
from adapters.service.parts import dispatcher_part
from adapters.service.settings import Settings
from adapters.tracing import otel
from adapters.worker import InProcessLedger, JobContext, Worker, WorkerConfig
from bench.projection_rebuild import database
from job_ledger import JobRequest
from job_ledger.local import LocalClient

SECTION = "## Tracing on against tracing off, end to end"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Size:
    jobs: int
    workers: int
    concurrency: int
    pairs: int  # (off, on) pairs of runs


FULL = Size(3000, 2, 8, 3)
QUICK = Size(300, 2, 8, 1)

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
"""The SDK's provider of this benchmark only: the global one is left alone, so what runs
after it in the same process (``python -m bench``) is not traced."""
PROVIDER.add_span_processor(BatchSpanProcessor(EXPORTER))


def tracing(on: bool) -> None:
    """Switch the hooks between the SDK (in-memory exporter) and the absent extra."""
    otel.TRACE, otel.TRACER = (trace, PROVIDER.get_tracer("job-ledger")) if on else (None, None)
    EXPORTER.clear()


async def noop(ctx: JobContext) -> None:
    return None


def one_run(container: Container, size: Size) -> float:
    """Jobs/s from the first enqueue to the last completion."""
    transport = build_transport(container.settings, container.backend)
    ports = [InProcessLedger(container.ledger) for _ in range(size.workers)]
    workers = [Worker(noop, transport, port, WorkerConfig(
        concurrency=size.concurrency, receive_wait=0.1, worker_id=f"bench-{i}"))
        for i, port in enumerate(ports)]
    client = LocalClient(container, customer_id="bench")
    producer = PROVIDER.get_tracer("bench-producer")
    elapsed: list[float] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(dispatcher_part(container, transport))
            for worker in workers:
                await tg.start(worker.run)
            started = time.perf_counter()
            for first in range(0, size.jobs, 500):
                jobs = [JobRequest(payload={"n": n})
                        for n in range(first, min(size.jobs, first + 500))]
                with producer.start_as_current_span("produce"):
                    await anyio.to_thread.run_sync(client.enqueue_many, jobs)
            with anyio.fail_after(300):
                while sum(w.stats.completed for w in workers) < size.jobs:
                    await anyio.sleep(0.01)
            elapsed.append(time.perf_counter() - started)
            for worker in workers:
                worker.drain()
            tg.cancel_scope.cancel()
        for port in ports:
            await port.aclose()
        await transport.aclose()

    anyio.run(main)
    return size.jobs / elapsed[0]


def measure(url: str, size: Size) -> dict[str, Any]:
    saved = otel.TRACE, otel.TRACER
    rates: dict[bool, list[float]] = {False: [], True: []}
    spans = 0
    container = build(Settings(database_url=url))
    try:
        for index in range(size.pairs * 2):
            on = index % 4 in (1, 2)  # off, on, on, off, ...
            tracing(on)
            rates[on].append(one_run(container, size))
            if on:
                PROVIDER.force_flush()
                spans = len(EXPORTER.get_finished_spans())
            print(f"tracing {'on ' if on else 'off'}: {rates[on][-1]:,.0f} jobs/s", flush=True)
    finally:
        otel.TRACE, otel.TRACER = saved
        container.close()
    return {"off": rates[False], "on": rates[True], "spans": spans}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    if otel.TRACE is None:
        raise SystemExit("bench.tracing needs the [otel] extra: pip install -e '.[otel]'")
    size = QUICK if args.quick else FULL
    with database() as url:
        figures = measure(url, size)
    if not args.no_doc:
        command = "python -m bench.tracing" + (" --quick" if args.quick else "")
        write_section(section(command, figures, size))
        print(f"wrote the '{SECTION}' section of docs/benchmarks.md")


def section(command: str, f: dict[str, Any], size: Size) -> str:
    off, on = statistics.median(f["off"]), statistics.median(f["on"])
    ratio = on / off
    runs = ", ".join(f"{r:,.0f}" for r in f["off"]), ", ".join(f"{r:,.0f}" for r in f["on"])
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"CPUs, one process on a throwaway PostgreSQL on the same machine: {size.jobs:,} jobs "
        f"per run, {size.workers} SDK workers of concurrency {size.concurrency}, an async "
        f"no-op handler; {size.pairs * 2} runs alternating off/on (load average "
        f"{os.getloadavg()[0]:.1f} at the end: other engineers' work was running too, so "
        "read the ratio more than the rates).", "",
        "| measure | tracing off | tracing on (in-memory exporter, batch processor) | on / off "
        "| bar |",
        "|---|---:|---:|---:|---|",
        f"| enqueue to completion, median of runs | {off:,.0f} jobs/s | **{on:,.0f} jobs/s** | "
        f"**{ratio:.2f}** | >= 0.90: {'met' if ratio >= 0.9 else '**not met**'} |",
        f"| each run | {runs[0]} | {runs[1]} | | |", "",
        f"The runs of one setting spread over {_spread(f['off']):.0%} (off) and "
        f"{_spread(f['on']):.0%} (on) of their medians on this machine, so the ratio is only "
        "as good as that spread; on / off below 0.90 in a run is a finding to repeat.", "",
        f"The last traced run exported {f['spans']:,} spans ({f['spans'] / size.jobs:.1f} per "
        "job: `job.enqueued`, `job.dispatch`, `job.attempt`; the producer's span per batch).",
        "",
    ])


def _spread(rates: list[float]) -> float:
    return (max(rates) - min(rates)) / statistics.median(rates)


def write_section(text_section: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (or append it)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: text_section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + text_section.rstrip("\n") + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
