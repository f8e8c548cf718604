"""``python -m bench [--quick]``: every benchmark of the project in one run, on one
PostgreSQL with durable commits, each workload against its baseline in the same run.

Starts a throwaway PostgreSQL (or uses ``DATABASE_URL``), then runs:

- the existing benchmarks, through their own ``main`` (each refreshes its own section of
  the document): ``bench.write_path`` (heartbeats and enqueue, one save() against
  batches), ``bench.http_api`` (heartbeats through the HTTP server, ``/health`` under that
  load, the rate limiter), ``bench.projection_rebuild`` (1,000,000 events);
- the workloads of this run: ``bench.enqueue`` (ledger against Procrastinate's ``defer``
  and a raw INSERT, by client count), ``bench.stale_scan`` (100,000 in-progress jobs),
  ``bench.limiter`` (8 client processes), ``bench.end_to_end`` (enqueue -> local queue ->
  worker -> completion against Procrastinate's worker; killed worker -> requeue);
- ``bench.controls`` through its own ``main`` (cancel of running jobs, 100,000 scheduled
  jobs, bulk cancel, the concurrency cap; issue 14);
- ``bench.timetravel`` (a job of 10,000 events as of any of them; ``replay stale`` over
  10,000,000 heartbeats) and ``bench.view_asof`` (``job_status`` a million events back,
  with and without checkpoints), through ``bench.time_travel_suite`` (issue 16);
- ``bench.tracing`` through its own ``main`` (end to end with tracing on, the in-memory
  exporter, against tracing off; issue 18);

and writes docs/benchmarks.md (a summary of every SPEC.md bar with its figure, baseline
and ratio on top, then a section per workload; other sections are left alone) and PNG
plots under docs/img/. ``--quick`` runs small versions (under two minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from bench import archive as archive_bench
from bench import (
    archive_year,
    burn_down,
    controls,
    end_to_end,
    enqueue,
    heartbeat_cpu,
    http_api,
    http_processes,
    limiter,
    plots,
    projection_rebuild,
    stale_scan,
    time_travel_suite,
)
from bench import claims as claims_bench
from bench import console as console_bench
from bench import schedules as schedules_bench
from bench import tracing as tracing_bench
from bench import write_path as write_path_bench
from bench.common import Figure, mark, pct
from bench.http_load import Load
from bench.http_load import pct as ms_pct
from tests.support.pg import PostgresServer, start_postgres

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SUMMARY = "## Every bar of SPEC.md, one run (python -m bench)"
ENQUEUE = "## Enqueue: ledger against Procrastinate and a raw INSERT"
STALE = "## Stale scan over 100,000 in-progress jobs"
LIMITER = "## Rate limiter with 8 concurrent clients"
E2E = "## End to end: enqueue, local queue, worker, completion"


@dataclass(frozen=True)
class Mode:
    name: str
    write_path: list[str] | None
    http: list[str] | None
    rebuild: list[str]
    enqueue: enqueue.Size
    stale: stale_scan.Size
    limiter: limiter.Size
    e2e: end_to_end.Size
    profile: bool


FULL = Mode("full", [], ["--processes", "2"], [],  # two API processes (ADR 160): the
            # open-loop tail of 2.5 s was jobs moving between their caches (ADR 181); the
            # http_processes section compares 1 and 2
            enqueue.Size((1, 4, 16), 100, 1.5, 200_000, 3),
            stale_scan.FULL, limiter.FULL, end_to_end.FULL, True)  # fmt: skip
QUICK = Mode(
    "quick", None, ["--quick", "--no-profile"],
    ["--events", "100000", "--baseline-events", "2000", "--baseline-seconds", "10"],
    enqueue.QUICK, stale_scan.QUICK, limiter.QUICK, end_to_end.QUICK, False,
)
TINY = Mode(
    "tiny", ["--quick", "--repeats", "1"], ["--quick", "--no-profile"],
    ["--events", "20000", "--baseline-events", "300", "--baseline-seconds", "5",
     "--page-size", "5000"],
    enqueue.TINY, stale_scan.TINY, limiter.TINY, end_to_end.TINY, False,
)  # fmt: skip


@dataclass
class Outcome:
    """What the run found: the figures of each workload, or why it has none."""

    write_path: Any = None
    http: Any = None
    rebuild: dict[str, Any] | None = None
    enqueue: list[Figure] = field(default_factory=list)
    stale: list[Figure] = field(default_factory=list)
    limiter: list[Figure] = field(default_factory=list)
    e2e: list[Figure] = field(default_factory=list)
    timetravel: dict[str, Any] | None = None
    view_asof: dict[str, Any] | None = None
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)


# -- calling the existing benchmarks -------------------------------------------------------------


@contextlib.contextmanager
def captured(module: ModuleType, name: str) -> Iterator[list[tuple[Any, ...]]]:
    """Record the arguments of every call of ``module.name`` (a report function) while
    the benchmark's ``main`` runs, so its figures can go into the summary."""
    original = getattr(module, name)
    calls: list[tuple[Any, ...]] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append((*args, kwargs))
        return original(*args, **kwargs)

    setattr(module, name, wrapper)
    try:
        yield calls
    finally:
        setattr(module, name, original)


@contextlib.contextmanager
def on_server(server: PostgresServer, prog: str, argv: list[str]) -> Iterator[None]:
    """The benchmarks find their server through ``start_postgres()``: ``DATABASE_URL``
    points them at this run's; ``sys.argv`` names their command in their sections."""
    saved_env, saved_argv = os.environ.get("DATABASE_URL"), sys.argv
    os.environ["DATABASE_URL"] = server.url
    sys.argv = [prog, *argv]
    try:
        yield
    finally:
        sys.argv = saved_argv
        if saved_env is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved_env


def run_write_path(server: PostgresServer, argv: list[str], output: Path) -> Any:
    with on_server(server, "write_path", argv), captured(write_path_bench, "report") as calls:
        write_path_bench.main([*argv, "--output", str(output)])
    return calls[-1] if calls else None


def run_http(server: PostgresServer, argv: list[str], output: Path) -> Any:
    with on_server(server, "http_api", argv), captured(http_api, "report") as calls:
        http_api.main([*argv, "--output", str(output)])
    return calls[-1][0] if calls else None


CONTROLS = {
    "full": [],
    "quick": ["--cancels", "20", "--scheduled", "5000", "--spread", "10", "--bulk", "10000",
              "--baseline", "500", "--claims", "2000"],
    "tiny": ["--cancels", "3", "--scheduled", "200", "--spread", "2", "--bulk", "500",
             "--baseline", "50", "--claims", "200"],
}
"""``bench.controls``'s arguments per mode."""


class OwningBench(Protocol):
    """A benchmark module whose ``main`` writes its own section to its ``DOC``."""

    DOC: Path

    def main(self, argv: list[str]) -> object: ...


CONSOLE = {"full": [], "quick": ["--quick"], "tiny": ["--quick", "--jobs", "1000"]}
"""``bench.console``'s arguments per mode (issue 15): 1,000,000 jobs in the full run."""


def run_owning(
    module: OwningBench, name: str, server: PostgresServer, argv: list[str], output: Path
) -> None:
    """Run a benchmark module whose ``main`` writes its own section to the module's
    ``DOC``, on ``server``, writing to ``output`` instead."""
    saved = module.DOC
    module.DOC = output
    try:
        with on_server(server, name, argv):
            module.main(argv)
    finally:
        module.DOC = saved


def run_controls(server: PostgresServer, argv: list[str], output: Path) -> None:
    run_owning(controls, "controls", server, argv, output)


ARCHIVE = {
    "full": [],
    "quick": ["--jobs", "2000", "--shows", "50", "--rounds", "0"],
    "tiny": ["--jobs", "50", "--beats", "5", "--shows", "10", "--rounds", "0"],
}
"""``bench.archive``'s arguments per mode (issue 17); only the full run waits for
autovacuum between rounds."""


def run_archive_bench(server: PostgresServer, argv: list[str], output: Path) -> None:
    run_owning(archive_bench, "archive", server, argv, output)


SCHEDULES = {
    "full": [],
    "quick": ["--schedules", "2000", "--baseline", "300"],
    "tiny": ["--schedules", "100", "--baseline", "20"],
}
"""``bench.schedules``' arguments per mode (issue 18)."""


def run_schedules_bench(server: PostgresServer, argv: list[str], output: Path) -> None:
    run_owning(schedules_bench, "schedules", server, argv, output)


def run_tracing(server: PostgresServer, argv: list[str], output: Path) -> None:
    run_owning(tracing_bench, "tracing", server, argv, output)


def run_rebuild(server: PostgresServer, argv: list[str], output: Path) -> dict[str, Any] | None:
    saved = projection_rebuild.DOC
    projection_rebuild.DOC = output  # its main writes to the module's DOC
    try:
        with on_server(server, "projection_rebuild", argv), captured(
            projection_rebuild, "_section"
        ) as calls:
            projection_rebuild.main(argv)
    finally:
        projection_rebuild.DOC = saved
    return calls[-1][-1] if calls else None


# -- the document ---------------------------------------------------------------------------------


def write_section(path: Path, title: str, body: str, *, first: bool = False) -> None:
    """Replace the section ``title`` of ``path`` (or add it: at the end, or right under the
    document's title when ``first``), leaving the other sections alone."""
    section = f"{title}\n\n{body.strip()}\n\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    elif first and text.startswith("# "):
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{section}{rest.lstrip()}"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


def image(outcome: Outcome, doc: Path, key: str, alt: str) -> str:
    found = outcome.images.get(key)
    if found is None:
        return ""
    return f"![{alt}]({os.path.relpath(found, doc.parent)})\n"


def figure_row(f: Figure, base: Figure | None, unit: str, scale: float = 1.0) -> str:
    ratio = f"{f.median / base.median:.2f}x" if base and base.median else ""
    return f"| {f.name} | {f.spread(scale)} {unit} | {ratio} |"


def enqueue_section(outcome: Outcome, mode: Mode, doc: Path) -> str:
    figures, size = outcome.enqueue, mode.enqueue
    b = size.batch
    lines = [
        f"Each path in a fresh database, closed loop for {size.seconds:g} s (at most "
        f"{size.most:,} jobs), {size.repeats} runs: median (min-max); the runs alternate "
        "between the paths at each client count (every path once, then again). Clients "
        "are threads of the benchmark process (Procrastinate's are asyncio tasks on its "
        "own pool, its native API); the row of the raw INSERT is the ledger's own "
        "`Enqueued` event row (same topic and state bytes) into a copy of the events "
        "table. The ledger's rows write each job's queue row with its event (the outbox, "
        "ADR 151, as `ledger serve`, `LocalClient` and the HTTP API do with the local queue "
        "on PostgreSQL) except the one marked \"no outbox\" (an SQS deployment's "
        "enqueue). \"vs defer\" divides by Procrastinate's rate at the same client count "
        "and the same batch size.", "",
        "| path | clients | jobs/s | vs Procrastinate | vs raw INSERT |",
        "|---|---:|---:|---:|---:|",
    ]
    for f in figures:
        clients = int(f.notes["clients"])
        batched = "batch" in f.name
        peer = enqueue.at(figures, enqueue.PEER_BATCH.format(b=b) if batched
                          else enqueue.PEER_ONE, clients)  # fmt: skip
        raw = enqueue.at(figures, enqueue.RAW_BATCH.format(b=b) if batched
                         else enqueue.RAW_ONE, clients)  # fmt: skip
        lines.append(f"| {f.name} | {clients} | {f.spread()} | "
                     f"{f.median / peer.median:.2f}x | {f.median / raw.median:.2f}x |")
    lines += ["", image(outcome, doc, "enqueue", "enqueue jobs/s against clients")]
    lines += ["Reading:", "", *enqueue_reading(figures, size)]
    return "\n".join(lines)


def enqueue_reading(figures: list[Figure], size: enqueue.Size) -> list[str]:
    b, out = size.batch, []
    for clients in size.clients:
        one = enqueue.at(figures, enqueue.LEDGER_ONE, clients)
        bare = enqueue.at(figures, enqueue.LEDGER_BARE, clients)
        group = enqueue.at(figures, enqueue.LEDGER_GROUP, clients)
        peer = enqueue.at(figures, enqueue.PEER_ONE, clients)
        raw = enqueue.at(figures, enqueue.RAW_ONE, clients)
        batch = enqueue.at(figures, enqueue.LEDGER_BATCH.format(b=b), clients)
        peer_batch = enqueue.at(figures, enqueue.PEER_BATCH.format(b=b), clients)
        ratio = one.median / peer.median
        grouped = group.median / peer.median
        out.append(
            f"- {clients} client(s): one job per transaction {one.median:,.0f}/s against "
            f"`defer` {peer.median:,.0f}/s ({ratio:.2f}x: {mark(ratio >= 1.5)} the 1.5x bar; "
            f"without the outbox {bare.median:,.0f}/s, {bare.median / peer.median:.2f}x); "
            f"one job per call with group commit {group.median:,.0f}/s ({grouped:.2f}x: "
            f"{mark(grouped >= 1.5)}); the raw INSERT {raw.median:,.0f}/s; in batches of {b}: "
            f"{batch.median:,.0f}/s against `batch_defer` {peer_batch.median:,.0f}/s "
            f"({batch.median / peer_batch.median:.2f}x: "
            f"{mark(batch.median / peer_batch.median >= 1.5)})."
        )
    out.append(
        "- Where the time goes: one job per transaction is one durable commit each for every "
        "path. The ledger's append is one statement (ADR 5; concurrent appends overlap their "
        "commits since ADR 150: a short ordering section instead of the table's lock held "
        "to the commit) that writes the job's event and, with the outbox, its queue row "
        "(ADR 151), so the job can be claimed once it commits, as a deferred job can; the "
        "client adds the decision and the event's encoding. Without the outbox (an SQS "
        "deployment) the row is the event alone and the dispatcher sends the message "
        "afterwards, outside this clock. One job per transaction calls the statement for "
        "new jobs, which takes only what varies (ADR 212). The group-commit path turns "
        "concurrent calls into one transaction, as `LocalClient.enqueue` does for an "
        "application's threads (its writer waits briefly for the callers it just "
        "answered, ADR 213; `ledger serve`'s, for HTTP requests, does not). In batches "
        "the commit is amortised and the per-job Python work (decide, encode) remains."
    )
    return out


def stale_section(outcome: Outcome, mode: Mode, doc: Path) -> str:
    figures, size = outcome.stale, mode.stale
    by_label: dict[str, list[Figure]] = {}
    for f in figures:
        by_label.setdefault(f.name.rsplit(", ", 1)[1], []).append(f)
    lines = [
        f"`job_status` seeded with COPY: {size.in_progress:,} jobs in progress and "
        f"{size.finished:,} completed ones, then `VACUUM ANALYZE`; the real schema with its "
        "partial index on `last_heartbeat_at WHERE status = 'in_progress'`. Each run times "
        f"{size.scans} scans after one warm-up; the figure is the median scan of each run, "
        f"median (min-max) over {size.repeats} runs, and p99 over every scan. The limit of "
        "a scan is the monitor's, 1,000 jobs.", "",
        "| scan | rows | ms per scan | p99 ms | vs no index |", "|---|---:|---:|---:|---:|",
    ]
    for group in by_label.values():
        base = group[-1]
        for f in group:
            ratio = f"{base.median / f.median:.1f}x faster" if f is not base else ""
            lines.append(f"| {f.name} | {f.notes['rows']} | {f.spread(1e3)} | "
                         f"{pct(f.samples, 0.99) * 1e3:.2f} | {ratio} |")
    lines += ["", image(outcome, doc, "stale", "stale scan latency percentiles")]
    worst = max((f.median for f in figures if "StaleMonitor" in f.name), default=0.0)
    lines += [
        "Reading:", "",
        f"- Under 100 ms: {mark(worst < 0.1)} ({worst * 1e3:.1f} ms at worst for "
        "`StaleMonitor.findings()`).",
        "- Where the time goes: with every job silent the scan returns its limit of 1,000 "
        "rows, and decoding them into `JobStatus` structs (18 columns, UUIDs and times) is "
        "most of it: compare the psycopg row fetch of the baseline. With 100 silent the "
        "index reads only those. Without the index PostgreSQL reads the whole table and "
        "sorts; the index matters as the table grows.",
    ]
    return "\n".join(lines)


def limiter_section(outcome: Outcome, mode: Mode, doc: Path) -> str:
    figures = outcome.limiter
    base = next((f for f in figures if f.name.startswith(limiter.NAIVE)), None)
    lines = [
        f"{limiter.CLIENTS} client processes on 127.0.0.1, each its own `Limiter` on "
        "`PostgresCounters` (as separate API processes are), closed loop for "
        f"{mode.limiter.seconds:g} s, {mode.limiter.repeats} run(s): median (min-max). The "
        "baseline is the obvious counter: one `INSERT ... ON CONFLICT DO UPDATE ... "
        "RETURNING` per decision from each client, with the limiter's session settings "
        "(`synchronous_commit = off`: counters are not the ledger). Exactness: after each "
        f"run the {limiter.CLIENTS} clients fire {limiter.EXACT_PER_CLIENT} decisions each "
        f"at once at one bucket with a limit of {limiter.EXACT_LIMIT:,}.", "",
        "| path | decisions/s | vs one UPSERT per decision | admitted (exact?) |",
        "|---|---:|---:|---|",
    ]
    for f in figures:
        ratio = f"{f.median / base.median:.2f}x" if base else ""
        admitted = (f"{f.notes['admitted']} of {limiter.CLIENTS * limiter.EXACT_PER_CLIENT:,} "
                 f"({'exact' if f.notes['exact'] == 'True' else 'NOT EXACT'})"
                 if "admitted" in f.notes else "")  # fmt: skip
        lines.append(f"| {f.name} | {f.spread()} | {ratio} | {admitted} |")
    best = max((f for f in figures if "admitted" in f.notes), key=lambda f: f.median,
               default=None)  # fmt: skip
    if best is not None:
        exact = all(f.notes["exact"] == "True" for f in figures if "admitted" in f.notes)
        lines += [
            "", "Reading:", "",
            f"- At least 5,000 decisions/s and exact: {mark(best.median >= 5000 and exact)} "
            f"({best.median:,.0f}/s with {best.notes['in_flight']} in flight per client).",
            "- Where the time goes: one decision in flight per client leaves the limiter "
            "nothing to batch, so each decision pays a round trip through the limiter's "
            "batching task (a memory stream, a task switch, one statement) on top of the "
            "statement itself; that is why it trails the bare UPSERT there. With decisions "
            "waiting, one statement settles many (the HTTP section's 2,000 in flight shows "
            "the limit).",
        ]
    return "\n".join(lines)


def e2e_section(outcome: Outcome, mode: Mode, doc: Path) -> str:
    size = mode.e2e
    by = {f.name: f for f in outcome.e2e}
    ledger, peer, kill = (by.get(n) for n in (end_to_end.LEDGER_E2E, end_to_end.PEER_E2E,
                                               end_to_end.KILL))  # fmt: skip
    lines = [
        f"{size.jobs:,} no-op jobs per run, {size.repeats} run(s): median (min-max); "
        f"{size.workers} worker processes with concurrency {size.concurrency} each, on both "
        "sides. Ledger: `ledger serve` (projection runner, dispatcher, monitors, API) and "
        "`ledger worker --handler adapters.worker.examples:noop` processes, idle before the clock "
        "starts; the clock runs from the first enqueue (batches of 500, each job's queue "
        "message written with its event as `LocalClient` and the API write it: the outbox, "
        "ADR 151) to the last `Completed` event in the log, so it includes enqueue, claim, "
        "run and completion, each an event. Procrastinate: jobs deferred first (not timed), then "
        "its workers released together; the clock stops when all succeeded.", "",
        "| path | jobs/s | vs Procrastinate |", "|---|---:|---:|",
    ]
    if ledger is not None:
        lines.append(figure_row(ledger, peer, ""))
    if peer is not None:
        lines.append(figure_row(peer, peer, ""))
    lines += ["", image(outcome, doc, "e2e", "end to end jobs/s")]
    lines += ["Reading:", ""]
    if ledger is not None and peer is not None and peer.median:
        ratio = ledger.median / peer.median
        lines.append(f"- At least 2x Procrastinate's worker rate: {mark(ratio >= 2)} "
                     f"({ratio:.2f}x).")
    if ledger is not None and "profile" in ledger.notes:
        lines.append("- Where a worker's CPU goes (py-spy, 3 s of extra runs after the timed "
                     "ones, not counted: the sampler pauses the worker it reads; running "
                     f"frames by thread and code area): {ledger.notes['profile']}.")
    lines.append(
        "- What each side does per job. Procrastinate: one fetch and one status update, "
        "both durable commits. The ledger: three durable appends to the log (enqueue, "
        "claim, completion; batched: the enqueue by 500, claims and completions by the "
        "worker's group commit; the queue's rows go in with the enqueue's), and "
        "asynchronously committed derived writes (ADR 6): three events folded into five "
        "views, the dispatcher's position, the queue's receive and delete (deletes of jobs "
        "finishing together share one statement). Every event is also read by the "
        "projection runner and the dispatcher. The CPU table below shows where the machine "
        "goes: with two CPUs, the workers, `ledger serve` and PostgreSQL compete for them."
    )
    lines += burn_down.cpu_lines([f for f in (ledger, peer) if f is not None])
    if kill is not None:
        bar = 3.5
        lines += [
            "", f"Killed worker -> requeue ({len(kill.values)} kill(s)): `ledger serve` with "
            "`STALE_THRESHOLD_MINUTES=0.05` (3 s) and `CHECK_INTERVAL_SECONDS=0.5`; a worker "
            "(heartbeats every 0.75 s) holds a 60 s job and gets SIGKILL; timed from the kill "
            f"to the `Requeued` event: **{kill.spread()} s**; the guarantee is within "
            f"threshold + check interval ({bar:g} s) of the last heartbeat: "
            f"{mark(max(kill.values) <= bar)}.",
        ]
    return "\n".join(lines)


def summary_section(outcome: Outcome, mode: Mode, info: list[str], began: datetime) -> str:
    command = " ".join(["python -m bench", *sys.argv[1:]])
    rows = ["| SPEC.md bar | measured | baseline (same run) | ratio | verdict |",
            "|---|---|---|---:|---|"]  # fmt: skip
    http = outcome.http
    if http is not None:
        loads: list[Load] = http.loads
        base_load: Load = http.base
        single, closed, open_big, open_small = loads[:4]
        p99 = ms_pct(open_big.latencies, 0.99)
        rows.append(
            f"| heartbeats >= 5,000/s through HTTP, p99 < 50 ms | {closed.rate:,.0f}/s "
            f"(closed loop, {closed.heartbeats // max(closed.requests, 1)} per request); at "
            f"5,000/s offered p99 {p99:.1f} ms; 1 per request {single.rate:,.0f}/s | one "
            f"save() per heartbeat {base_load.rate:,.0f}/s; "
            f"`ledger serve --processes {http.processes}` | "
            f"{closed.rate / base_load.rate:.1f}x "
            f"(bar 10x) | "
            f"{mark(closed.rate >= 5000 and p99 < 50 and closed.rate / base_load.rate >= 10)}"
            " |"
        )
        health = max(ms_pct(open_big.health, 0.99), ms_pct(open_small.health, 0.99))
        rows.append(f"| /health p99 < 5 ms under that ingest | {health:.2f} ms (worst open-loop "
                    f"phase) | | | {mark(health < 5)} |")
    else:
        rows.append(f"| heartbeats, /health | not run: {outcome.failed.get('http', 'skipped')} "
                    "| | | |")
    rebuild = outcome.rebuild
    if rebuild is not None:
        rows.append(
            f"| projection rebuild >= 50,000 events/s | {rebuild['rate']:,.0f} events/s over "
            f"{rebuild['total']:,} events | eventsourcing ProjectionRunner "
            f"{rebuild['base_rate']:,.0f}/s | {rebuild['ratio']:,.1f}x | "
            f"{mark(rebuild['rate'] >= 50_000)} |"
        )
    else:
        rows.append(f"| projection rebuild | not run: {outcome.failed.get('rebuild', '')} "
                    "| | | |")
    if outcome.enqueue:
        size = mode.enqueue
        for clients in (size.clients[0], size.clients[-1]):
            peer = enqueue.at(outcome.enqueue, enqueue.PEER_ONE, clients)
            raw = enqueue.at(outcome.enqueue, enqueue.RAW_ONE, clients)
            for path, how in ((enqueue.LEDGER_ONE, "1 per transaction"),
                              (enqueue.LEDGER_GROUP, "1 per call, group commit")):
                one = enqueue.at(outcome.enqueue, path, clients)
                r = one.median / peer.median
                rows.append(
                    f"| enqueue >= 1.5x Procrastinate `defer` ({clients} client(s), {how}) "
                    f"| {one.spread()} jobs/s | defer {peer.spread()}; raw INSERT "
                    f"{raw.spread()} | {r:.2f}x | {mark(r >= 1.5)} |"
                )
        b = size.batch
        batch = enqueue.at(outcome.enqueue, enqueue.LEDGER_BATCH.format(b=b), size.clients[0])
        peer_b = enqueue.at(outcome.enqueue, enqueue.PEER_BATCH.format(b=b), size.clients[0])
        rows.append(
            f"| enqueue, batches of {b} (1 client) | {batch.spread()} jobs/s | batch_defer "
            f"{peer_b.spread()} | {batch.median / peer_b.median:.2f}x | "
            f"{mark(batch.median / peer_b.median >= 1.5)} |"
        )
    by = {f.name: f for f in outcome.e2e}
    if end_to_end.LEDGER_E2E in by and end_to_end.PEER_E2E in by:
        mine, peer = by[end_to_end.LEDGER_E2E], by[end_to_end.PEER_E2E]
        r = mine.median / peer.median
        rows.append(f"| end to end >= 2x Procrastinate's worker | {mine.spread()} jobs/s | "
                    f"Procrastinate {peer.spread()} jobs/s | {r:.2f}x | {mark(r >= 2)} |")
    if end_to_end.KILL in by:
        kill = by[end_to_end.KILL]
        rows.append(f"| killed worker -> requeue within threshold + interval (3 + 0.5 s) | "
                    f"{kill.spread()} s | | | {mark(max(kill.values) <= 3.5)} |")
    if outcome.stale:
        worst = max(outcome.stale, key=lambda f: f.median if "findings" in f.name else 0.0)
        no_index = next(f for f in outcome.stale if f.name.startswith("baseline")
                        and f.name.endswith(worst.name.rsplit(", ", 1)[1]))  # fmt: skip
        rows.append(
            f"| stale scan over 100,000 in-progress jobs < 100 ms | {worst.spread(1e3)} ms "
            f"({worst.name}) | no index {no_index.spread(1e3)} ms | "
            f"{no_index.median / worst.median:.1f}x | {mark(worst.median < 0.1)} |"
        )
    limited = [f for f in outcome.limiter if "admitted" in f.notes]
    naive = next((f for f in outcome.limiter if f.name.startswith(limiter.NAIVE)), None)
    if limited and naive is not None:
        best = max(limited, key=lambda f: f.median)
        exact = all(f.notes["exact"] == "True" for f in limited)
        rows.append(
            f"| rate limiter exact, >= 5,000 decisions/s (8 clients) | {best.spread()}/s "
            f"({best.notes['in_flight']} in flight per client); "
            f"{'exact' if exact else 'NOT EXACT'} | one UPSERT per decision "
            f"{naive.spread()}/s | {best.median / naive.median:.2f}x | "
            f"{mark(best.median >= 5000 and exact)} |"
        )
    if http is not None:
        lim = http.limiter
        rows.append(f"| rate limiter, 2 limiters, 2,000 in flight (HTTP section) | "
                    f"{lim.rate:,.0f}/s, {'exact' if lim.exact else 'NOT EXACT'} | | | "
                    f"{mark(lim.rate >= 5000 and lim.exact)} |")
    rows += time_travel_suite.summary_rows(outcome.timetravel, outcome.view_asof, outcome.failed)
    failed = [f"- {name} failed: {why}" for name, why in outcome.failed.items()]
    took = ", ".join(f"{k} {v:.0f} s" for k, v in outcome.seconds.items())
    return "\n".join([
        f"Produced by `{command}` ({mode.name} run) from {began:%Y-%m-%d %H:%M} UTC; "
        f"{sum(outcome.seconds.values()) / 60:.1f} minutes ({took}). Every workload ran on "
        "the same PostgreSQL with durable commits, its baseline in the same run; the "
        "sections below say how each was measured (median of several runs with min-max "
        "unless said). Machine, versions and settings:", "",
        *info, "", *rows, "", *failed,
    ])


def machine_info(server: PostgresServer) -> list[str]:
    lines = write_path_bench.machine(server)
    lines[-1] = lines[-1].replace("Server: DATABASE_URL", f"Server: {type(server).__name__}")
    libs = ["procrastinate", "matplotlib", "litestar", "uvicorn", "msgspec"]
    lines.append("- Also: " + ", ".join(f"{lib} {_version(lib)}" for lib in libs)
                 + f"; {platform.python_implementation()}; load average "
                 + "/".join(f"{x:.2f}" for x in os.getloadavg()) + " at the start")
    lines.append("- Load: every client is a separate process from PostgreSQL and from the "
                 "server under test, all on 127.0.0.1 of this one machine (they share its "
                 "CPUs); every loop is bounded in count and time")
    return lines


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:
        return "?"


# -- the run ------------------------------------------------------------------------------------


def step(outcome: Outcome, name: str, call: Callable[[], Any]) -> Any:
    print(f"\n=== {name} ===", flush=True)
    began = time.perf_counter()
    try:
        return call()
    except Exception as error:
        traceback.print_exc()
        outcome.failed[name] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return None
    finally:
        outcome.seconds[name] = time.perf_counter() - began


def draw(outcome: Outcome, images: Path) -> None:
    if outcome.enqueue:
        outcome.images["enqueue"] = plots.throughput_vs_clients(
            outcome.enqueue, images / "enqueue-vs-clients.png",
            "Enqueue jobs/s against concurrent clients (PostgreSQL, durable commits)")
    if outcome.stale:
        outcome.images["stale"] = plots.latency_percentiles(
            [(f.name, f.samples) for f in outcome.stale], images / "stale-scan-latency.png",
            "Stale scan: ms per scan, percentiles over every scan")
    if outcome.http is not None:
        loads: list[Load] = outcome.http.loads
        series: list[tuple[str, Sequence[float]]] = [(x.name, x.latencies) for x in loads]
        series += [(f"/health during: {x.name.split(',')[0]}", x.health) for x in loads[2:]]
        outcome.images["http"] = plots.latency_percentiles(
            series, images / "http-latency.png",
            "HTTP heartbeats and /health: latency percentiles (one run per phase)")
    if outcome.limiter:
        outcome.images["limiter"] = plots.bars(
            outcome.limiter, images / "limiter.png",
            "Rate limiter decisions/s, 8 client processes", "decisions/s")
    if outcome.e2e:
        rates = [f for f in outcome.e2e if f.unit == "jobs/s"]
        if rates:
            outcome.images["e2e"] = plots.bars(
                rates, images / "end-to-end.png", "End to end no-op jobs/s", "jobs/s")


def run_workloads(
    server: PostgresServer, mode: Mode, skip: set[str], doc: Path, outcome: Outcome
) -> None:
    if mode.write_path is not None and "write_path" not in skip:
        argv_wp = mode.write_path
        outcome.write_path = step(outcome, "write_path",
                                  lambda: run_write_path(server, argv_wp, doc))
    if mode.http is not None and "http" not in skip:
        argv_http = mode.http
        outcome.http = step(outcome, "http", lambda: run_http(server, argv_http, doc))
    if "rebuild" not in skip:
        outcome.rebuild = step(outcome, "rebuild",
                               lambda: run_rebuild(server, mode.rebuild, doc))
    if "enqueue" not in skip:
        outcome.enqueue = step(outcome, "enqueue",
                               lambda: enqueue.run(server, mode.enqueue)) or []
    if "stale" not in skip:
        outcome.stale = step(outcome, "stale",
                             lambda: stale_scan.run(server, mode.stale)) or []
    if "limiter" not in skip:
        outcome.limiter = step(outcome, "limiter",
                               lambda: limiter.run(server, mode.limiter)) or []
    if "e2e" not in skip:
        outcome.e2e = step(outcome, "e2e", lambda: end_to_end.run(
            server, mode.e2e, profiled=mode.profile)) or []
    if "controls" not in skip:
        argv_controls = CONTROLS[mode.name]
        step(outcome, "controls", lambda: run_controls(server, argv_controls, doc))
    if "timetravel" not in skip:
        outcome.timetravel = step(outcome, "timetravel", lambda: time_travel_suite.run_timetravel(
            server, mode.name, doc))
    if "view_asof" not in skip:
        outcome.view_asof = step(outcome, "view_asof", lambda: time_travel_suite.run_view_asof(
            server, mode.name, doc))
    owning_sections = {  # each writes its own section of the document
        "archive": lambda: run_archive_bench(server, ARCHIVE[mode.name], doc),  # ADR 110
        "archive_year": lambda: run_owning(  # a simulated year with archiving (ADR 115)
            archive_year, "archive_year", server, archive_year.SIZES[mode.name], doc),
        "schedules": lambda: run_schedules_bench(server, SCHEDULES[mode.name], doc),  # 130
        "tracing": lambda: run_tracing(  # tracing on against off, end to end (ADR 125)
            server, [] if mode.name == "full" else ["--quick"], doc),
        "burn_down": lambda: burn_down.run_in_suite(server, mode.name, doc),  # issue 19
        "claims": lambda: claims_bench.run_in_suite(  # batches against one by one (ADR 155)
            server, mode.name, doc),
        "http_processes": lambda: run_owning(  # 1 against 2 API processes (ADR 160)
            http_processes, "http_processes", server,
            [] if mode.name == "full" else [f"--{mode.name}"], doc),
        "heartbeat_cpu": lambda: run_owning(  # API CPU per heartbeat request (ADR 198)
            heartbeat_cpu, "heartbeat_cpu", server,
            [] if mode.name == "full" else [f"--{mode.name}"], doc),
        "console": lambda: run_owning(  # the console's pages (issue 15, ADR 140)
            console_bench, "console", server, CONSOLE[mode.name], doc),
    }
    for name, run in owning_sections.items():
        if name not in skip:
            step(outcome, name, run)


def main(argv: Sequence[str] | None = None) -> Outcome:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small versions, < 2 minutes")
    parser.add_argument("--tiny", action="store_true", help="smallest versions (the tests)")
    parser.add_argument("--output", type=Path, default=DOC, help="the markdown file")
    parser.add_argument("--images", type=Path, help="where the PNGs go (default: img/ "
                        "beside the output)")  # fmt: skip
    parser.add_argument("--skip", default="", help="comma-separated: write_path,http,"
                        "rebuild,enqueue,stale,limiter,e2e,controls,timetravel,"
                        "view_asof,tracing,archive,archive_year,schedules,burn_down,claims,"
                        "console,"
                        "http_processes,heartbeat_cpu")  # fmt: skip
    args = parser.parse_args(argv)
    mode = TINY if args.tiny else QUICK if args.quick else FULL
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    doc: Path = args.output
    images: Path = args.images or doc.parent / "img"
    outcome = Outcome()
    began = datetime.now(UTC)
    doc.parent.mkdir(parents=True, exist_ok=True)
    with start_postgres() as server:
        info = machine_info(server)
        print(*info, sep="\n", flush=True)
        run_workloads(server, mode, skip, doc, outcome)
    step(outcome, "plots", lambda: draw(outcome, images))
    if outcome.enqueue:
        write_section(doc, ENQUEUE, enqueue_section(outcome, mode, doc))
    if outcome.stale:
        write_section(doc, STALE, stale_section(outcome, mode, doc))
    if outcome.limiter:
        write_section(doc, LIMITER, limiter_section(outcome, mode, doc))
    if outcome.e2e:
        write_section(doc, E2E, e2e_section(outcome, mode, doc))
    body = summary_section(outcome, mode, info, began)
    if "http" in outcome.images:
        body += "\n\n" + image(outcome, doc, "http", "HTTP latency percentiles")
    if "limiter" in outcome.images:
        body += "\n" + image(outcome, doc, "limiter", "limiter decisions/s")
    write_section(doc, SUMMARY, body, first=True)
    total = sum(outcome.seconds.values())
    print(f"\nwrote {doc} and {len(outcome.images)} plots in {images} ({total:.0f} s)"
          + (f"; FAILED: {', '.join(outcome.failed)}" if outcome.failed else ""))
    return outcome


if __name__ == "__main__":
    main()
