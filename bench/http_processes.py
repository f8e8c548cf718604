"""Several API processes against one (issue 19, ADR 160): the same heartbeat loads on
``ledger serve --api-only --processes 1`` and ``--processes N``, alternating, in one run.

``python -m bench.http_processes [--quick] [--processes N]`` starts a throwaway PostgreSQL
(or uses ``DATABASE_URL``) and, for each round, serves a fresh database with one process,
then with N, loading each with one heartbeat per request and then 100 per request (closed
loops, as ``bench.http_api``), 100 per request at 5,000 heartbeats/s (open loop) on the
kept connections and then on new ones, and ``/health/live``, then times one ``save()``
per heartbeat as the baseline of the 10x bar. The CPU column adds up the server's
processes; CPU per request is what more processes share out, not remove. Writes
"## HTTP API: several processes (issue 19)" in docs/benchmarks.md, leaving the other
sections alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.http_api import (
    Size,
    api_cpu_note,
    batch_requests,
    machine,
    measure_load,
    naive,
    serving,
    single_requests,
    write_section,
)
from bench.http_load import Load, Phase, encode, pct
from tests.support.pg import start_postgres

SECTION = "## HTTP API: several processes (issue 19)"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
FULL = Size(6400, 6.0, 400_000, 64, 100, 4.0, 5_000, 0.0, 3)
QUICK = Size(3200, 2.5, 100_000, 32, 100, 1.0, 1_000, 0.0, 1)
TINY = Size(800, 1.0, 20_000, 8, 100, 0.5, 300, 0.0, 1)
SINGLE, BATCH, LIVE_NAME = ("1 per request", "100 per request",
                            "GET /health/live (no key, no database)")
OPEN = "100 per request, open loop at 5,000/s"
MOVED = "the same, new connections each run"
PHASES = (SINGLE, BATCH, OPEN, MOVED, LIVE_NAME)
"""``/health/live`` is the framework's floor: uvicorn and Litestar around a route that
does nothing, so its CPU per request says what share of a heartbeat's is the HTTP stack.
The open loop is run twice: on the connections kept for the whole run (a worker's), then
on new ones for each run, so that with several processes a connection's jobs may land
on the other process's cache (ADR 181: that move was the 2.5 s tail)."""
OPEN_RATE = 5000.0


@dataclass
class Runs:
    """Every run of one (processes, phase), and the machine's load when each began."""

    loads: list[Load]
    load_averages: list[float]

    @property
    def median(self) -> Load:
        ordered = sorted(self.loads, key=lambda load: load.rate)
        return ordered[len(ordered) // 2]

    @property
    def median_p99(self) -> Load:
        """The run with the median p99 (open loops: their rate is the offered one)."""
        ordered = sorted(self.loads, key=lambda load: pct(load.latencies, 0.99))
        return ordered[len(ordered) // 2]

    def chosen(self, phase: str) -> Load:
        return self.median_p99 if phase in (OPEN, MOVED) else self.median


def measure(size: Size, counts: Sequence[int]) -> tuple[dict[tuple[int, str], Runs], Load,
                                                         list[str]]:
    found: dict[tuple[int, str], Runs] = {}
    base: Load | None = None
    with start_postgres() as server:
        info = machine(server)
        for _ in range(size.repeats):
            for count in counts:
                with serving(server, size, False, count) as served:
                    batches = batch_requests(served, size.batch, size.connections)
                    phases = [
                        Phase(SINGLE, single_requests(served, size.connections), 1),
                        Phase(BATCH, batches, size.batch),
                        Phase(OPEN, batches, size.batch, OPEN_RATE / size.batch),
                        Phase(MOVED, batches, size.batch, OPEN_RATE / size.batch),
                        Phase(LIVE_NAME, lambda _: LIVE, 1),
                    ]
                    for phase in phases:
                        runs = found.setdefault((count, phase.name), Runs([], []))
                        runs.load_averages.append(os.getloadavg()[0])
                        kept = served.kept
                        if phase.name == MOVED:
                            served.kept = []  # drive opens new connections
                        try:
                            runs.loads.append(measure_load(served, size, phase))
                        finally:
                            served.kept = kept
                        load = runs.loads[-1]
                        print(f"{count} process(es), {phase.name}: {load.rate:,.0f}/s p99 "
                              f"{pct(load.latencies, 0.99):.1f} ms cpu {load.server_cpu:.0%}"
                              f"{api_cpu_note(load)}",
                              flush=True)
                    if base is None:
                        base = naive(served, size)
        assert base is not None
    return found, base, info


LIVE = encode("GET", "/health/live")


def cpu_ms(load: Load) -> float:
    return load.server_cpu * load.seconds / max(load.requests, 1) * 1000


def report(found: dict[tuple[int, str], Runs], base: Load, info: list[str], size: Size,
           counts: Sequence[int]) -> str:
    command = " ".join(["python -m bench.http_processes", *sys.argv[1:]])
    lines = [
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
        "`ledger serve --api-only --processes N` for each N, alternating in one run on "
        f"PostgreSQL with durable commits ({size.connections} keep-alive connections, "
        f"{size.seconds:g} s closed loops, {size.repeats} round(s); the row is the median "
        "rate, with the range over rounds and the load average of the machine (1 minute) "
        "when each began). Other work on the machine counts against every figure alike.",
        "", *info, "",
        "| load | API processes | heartbeats (or requests)/s (range) | vs 1 process | "
        "p50 / p99 ms | CPU of the server | CPU per request | vs one save() per heartbeat | "
        "load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for phase in PHASES:
        one = found[(counts[0], phase)].chosen(phase)
        for count in counts:
            runs = found[(count, phase)]
            load = runs.chosen(phase)
            rates = [r.rate for r in runs.loads]
            lines.append(
                f"| {phase} | {count} | {load.rate:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
                f" | {load.rate / one.rate:.2f}x | {pct(load.latencies, 0.5):.1f} / "
                f"{pct(load.latencies, 0.99):.1f} | {load.server_cpu:.0%}{api_cpu_note(load)} | "
                f"{cpu_ms(load):.3f} ms | {load.rate / base.rate:.1f}x | "
                + ", ".join(f"{x:.1f}" for x in runs.load_averages) + " |")
    lines += [
        f"| one save() per heartbeat (1 thread, no HTTP) | | {base.rate:,.0f} | | "
        f"{pct(base.latencies, 0.5):.1f} / {pct(base.latencies, 0.99):.1f} | | | 1.0x | |",
        "", *verdicts(found, base, counts), "",
    ]
    return "\n".join(lines)


def verdicts(found: dict[tuple[int, str], Runs], base: Load, counts: Sequence[int]) -> list[str]:
    floor = found[(counts[0], LIVE_NAME)].median
    one = found[(counts[0], SINGLE)].median
    out = [f"- The HTTP stack's floor (`/health/live`) is {cpu_ms(floor):.3f} ms of CPU per "
           f"request against {cpu_ms(one):.3f} ms for one heartbeat in the same run: the rest "
           "is the key check, the limiter's shared statement, the body, the batch writer's "
           "decision and transaction, and the answer."]
    for count in counts:
        single = found[(count, SINGLE)].median
        batch = found[(count, BATCH)].median
        p99 = pct(single.latencies, 0.99)
        out.append(
            f"- {count} API process(es): one heartbeat per request {single.rate:,.0f}/s, p99 "
            f"{p99:.1f} ms (bar >= 5,000/s, p99 < 50 ms: "
            f"{'met' if single.rate >= 5000 and p99 < 50 else 'MISSED'}); 100 per request "
            f"{batch.rate / base.rate:.1f}x one save() per heartbeat (bar 10x: "
            f"{'met' if batch.rate / base.rate >= 10 else 'MISSED'}).")
        kept, moved = found[(count, OPEN)], found[(count, MOVED)]
        out.append(
            f"- {count} API process(es), 100 per request at 5,000 heartbeats/s (open loop): "
            f"p99 {pct(kept.median_p99.latencies, 0.99):.1f} ms ({p99_range(kept)} over the "
            f"rounds), /health p99 {pct(kept.median_p99.health, 0.99):.2f} ms, on the "
            "connections kept for the run; on new connections each run p99 "
            f"{pct(moved.median_p99.latencies, 0.99):.1f} ms ({p99_range(moved)}), /health p99 "
            f"{pct(moved.median_p99.health, 0.99):.2f} ms.")
    return out


def p99_range(runs: Runs) -> str:
    values = [pct(load.latencies, 0.99) for load in runs.loads]
    return f"{min(values):.1f}-{max(values):.1f} ms"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_processes", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short phases, one round")
    parser.add_argument("--tiny", action="store_true", help="the smallest (the suite's test)")
    parser.add_argument("--processes", type=int, default=2, help="N to set against 1")
    parser.add_argument("--output", type=Path, default=DOC, help="the markdown file to update")
    args = parser.parse_args(argv)
    size = TINY if args.tiny else QUICK if args.quick else FULL
    counts = (1, args.processes)
    began = time.perf_counter()
    found, base, info = measure(size, counts)
    section = report(found, base, info, size, counts)
    write_section(args.output, section, SECTION)
    print(f"\n{section}\nwrote {args.output} in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
