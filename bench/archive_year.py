"""A simulated year with archiving (issue 17): ``python -m bench.archive_year [--quick]``.

Starts a throwaway PostgreSQL (or uses ``DATABASE_URL``). Day by day for ``--days``
simulated days it writes the day's jobs with COPY (:mod:`bench.year_history`: completed
jobs of ``--beats`` heartbeats, dead letters redriven and completed, dead letters left
unresolved), feeds the views with the projection runner, and every ``--every`` days (and
on the last) runs ``ledger serve``'s archive policy (``archive_round``, the code
``ledger archive`` runs) with ``--older-than`` days at the simulated day's end. It
records the hot events table (rows, bytes), the checkpoints' and the archive index's
bytes and each archive's time over the year.

At the year's end, with ``--running`` jobs still running, it measures
``ledger projections rebuild job_status`` (from the newest checkpoint, then a checkpoint,
as the command does), ``ledger audit`` (with the archive's checks) and the p99 of a
heartbeat through the ledger's batch path (``BatchWriter``, ``--threads`` callers,
``--heartbeats`` heartbeats to the running jobs); then the same three on a fresh ledger
in a second database of the same server holding only the same hot window (the last
``--older-than`` days' jobs, the year's unresolved dead letters, the running jobs), in
the same run. The issue's bar: each within 20% of the fresh ledger's figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.service.archive_audit import archive_audit
from adapters.service.archive_policy import archive_round
from adapters.service.archive_reader import segment_store
from adapters.service.archive_replay import archive_options
from adapters.service.archive_status import archive_status
from adapters.service.audit import run_audit
from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from bench import archive_year_doc, projection_rebuild
from bench.archive import OLD
from bench.common import fresh_database, pct
from bench.year_history import (
    Mix,
    Templates,
    autovacuum_stand_in,
    checkpoints_kept,
    events_written,
    hot_table,
    project,
    table_bytes,
    templates,
    view_rows,
    write_day,
)
from ledger.commands import RecordHeartbeat
from ledger.errors import LedgerError
from projections.checkpoints import prune, take
from projections.rebuild import rebuild
from projections.registry import VIEWS
from tests.support.pg import PostgresServer, start_postgres

DOC = projection_rebuild.DOC
"""Where the section goes (``python -m bench`` points it at its own output)."""
SIZES = {
    "full": [],
    "quick": ["--days", "60", "--jobs-per-day", "40", "--running", "40",
              "--heartbeats", "400"],
    "tiny": ["--days", "12", "--jobs-per-day", "5", "--beats", "3", "--every", "3",
             "--older-than", "5", "--running", "5", "--heartbeats", "40", "--threads", "2",
             "--rounds", "1"],
}  # fmt: skip
"""The arguments of each size of ``python -m bench`` (``--quick``, ``--tiny``)."""


@dataclass(frozen=True)
class Plan:
    days: int
    mix: Mix
    beats: int
    every: int
    older_than: int
    running: int
    heartbeats: int
    threads: int
    rounds: int


@dataclass
class Sample:
    day: int
    rows_before: int
    """Hot events just before this archive (the most the week reached)."""
    hot_rows: int
    hot_bytes: int
    checkpoint_bytes: int
    index_bytes: int
    archive_seconds: float


@dataclass
class EndFigures:
    """The three measures of the issue's bar, on one ledger."""

    rebuild_seconds: float = 0.0
    audit_seconds: float = 0.0
    audit_ok: bool = False
    audit_note: str = ""
    beat_p50_ms: float = 0.0
    beat_p99_ms: float = 0.0
    beat_errors: int = 0
    hot_rows: int = 0
    hot_bytes: int = 0
    job_status_rows: int = 0


@dataclass
class YearFigures:
    plan: Plan
    samples: list[Sample] = field(default_factory=list)
    year: EndFigures = field(default_factory=EndFigures)
    fresh: EndFigures = field(default_factory=EndFigures)
    status: dict[str, Any] = field(default_factory=dict)
    checkpoints: int = 0
    written_events: int = 0
    per_job: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@contextmanager
def ledger_on(url: str) -> Iterator[tuple[Any, Settings]]:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(database_url=url, ledger_data_dir=Path(data))
        container = build(settings)
        try:
            yield container, settings
        finally:
            container.close()


def day_at(day: int) -> datetime:
    return OLD + timedelta(days=day)


@dataclass
class Ledger:
    """One ledger of the run: its database, its process's parts, its running jobs."""

    url: str
    container: Any
    settings: Settings
    running: list[UUID] = field(default_factory=list)


def simulate(year: Ledger, plan: Plan, figures: YearFigures) -> Templates:
    """The year on ``year``'s database, archived as it goes."""
    container, settings, url = year.container, year.settings, year.url
    kinds = templates(container, plan.beats)
    for day in range(plan.days):
        last = day == plan.days - 1
        year.running = write_day(url, kinds, plan.mix, day_at(day),
                                 running=plan.running if last else 0)
        project(container.backend)
        if (day + 1) % plan.every == 0 or last:
            figures.samples.append(archive(container, settings, url, plan, day))
            print(f"day {day + 1}: {figures.samples[-1]}", flush=True)
    figures.written_events = events_written(url)
    figures.status = archive_status(container.backend)
    figures.checkpoints = checkpoints_kept(url)
    figures.per_job = {name: len(events) for name, events in vars(kinds).items()}
    return kinds


def archive(container: Any, settings: Settings, url: str, plan: Plan, day: int) -> Sample:
    before, _ = hot_table(url)
    started = time.perf_counter()
    archive_round(container.backend, settings, timedelta(days=plan.older_than),
                  day_at(day + 1))
    seconds = time.perf_counter() - started
    autovacuum_stand_in(url)
    rows, size = hot_table(url)
    return Sample(day + 1, before, rows, size,
                  table_bytes(url, "view_checkpoints", "view_checkpoint_chunks"),
                  table_bytes(url, "archived_jobs", "archive_segments"), seconds)


def fill_fresh(fresh: Ledger, plan: Plan, kinds: Templates) -> None:
    """A ledger never archived holding the year's last hot window: the last
    ``older_than`` days' jobs, every day's unresolved dead letters, the running jobs."""
    cut = plan.days - plan.older_than
    for day in range(plan.days):
        last = day == plan.days - 1
        fresh.running = write_day(fresh.url, kinds, plan.mix, day_at(day),
                                  only_unresolved=day < cut,
                                  running=plan.running if last else 0)
    project(fresh.container.backend)
    autovacuum_stand_in(fresh.url)


def measure(ledgers: list[Ledger], plan: Plan) -> list[EndFigures]:
    """The three measures on each ledger, taken in turns (the machine's load falls on
    both alike): ``rounds`` of heartbeats and of rebuilds (medians), one audit each."""
    end = day_at(plan.days)
    figures = [EndFigures() for _ in ledgers]
    beats: list[list[tuple[float, float, int]]] = [[] for _ in ledgers]
    rebuilds: list[list[float]] = [[] for _ in ledgers]
    for f, ledger in zip(figures, ledgers, strict=True):
        f.hot_rows, f.hot_bytes = hot_table(ledger.url)
    for _ in range(plan.rounds):
        for n, ledger in enumerate(ledgers):
            beats[n].append(heartbeats(ledger.container, ledger.running, plan, end))
    for _ in range(plan.rounds):
        for n, ledger in enumerate(ledgers):
            project(ledger.container.backend)
            rebuilds[n].append(rebuild_job_status(ledger.container, ledger.settings, end))
    for f, ledger, mine, rebuilt in zip(figures, ledgers, beats, rebuilds, strict=True):
        f.beat_p50_ms = statistics.median(b[0] for b in mine)
        f.beat_p99_ms = statistics.median(b[1] for b in mine)
        f.beat_errors = sum(b[2] for b in mine)
        f.rebuild_seconds = statistics.median(rebuilt)
        audit(ledger, f, end)
    return figures


def audit(ledger: Ledger, figures: EndFigures, end: datetime) -> None:
    """``ledger audit`` as the command runs it (the archive's checks included)."""
    backend = ledger.container.backend
    started = time.perf_counter()
    report = run_audit(
        backend.open_views, list(VIEWS.values()), now=lambda: end,
        alert_grace=timedelta(minutes=10),
        archive=archive_audit(backend, segment_store(ledger.settings), deep=False),
    )
    figures.audit_seconds = time.perf_counter() - started
    figures.audit_ok = report.ok
    figures.audit_note = "" if report.ok else str(report.to_dict()["violations_by_invariant"])
    figures.job_status_rows = view_rows(ledger.url)


def rebuild_job_status(container: Any, settings: Settings, end: datetime) -> float:
    """``ledger projections rebuild job_status``: from the newest checkpoint after the
    archive's horizon (or the log's start), then a checkpoint and its pruning."""
    backend = container.backend
    store, reader = backend.open_views(), backend.open_views()
    try:
        started = time.perf_counter()
        start, log = archive_options(backend, False)
        rebuild(store, VIEWS["job_status"], reader=reader, start=start, log=log)
        checkpoints = backend.checkpoints()
        try:  # as the command does after a rebuild (ADR 90)
            take(store, checkpoints, VIEWS["job_status"], end)
            prune(checkpoints, "job_status", settings.checkpoint_keep)
        finally:
            checkpoints.close()
        return time.perf_counter() - started
    finally:
        reader.close()
        store.close()


def heartbeats(container: Any, running: list[UUID], plan: Plan, end: datetime,
               ) -> tuple[float, float, int]:
    """p50 and p99 (ms) of one heartbeat through the batch writer, and the refused ones."""
    writer = BatchWriter(container.ledger, lambda: end).start()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def caller(offset: int) -> None:
        mine: list[float] = []
        for n in range(offset, plan.heartbeats, plan.threads):
            job_id = running[n % len(running)]
            started = time.perf_counter()
            result = writer.submit(RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w")
                                   ).result()
            mine.append(time.perf_counter() - started)
            if isinstance(result, LedgerError):
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(plan.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    return pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000, errors[0]


def run(server: PostgresServer, plan: Plan) -> YearFigures:
    figures = YearFigures(plan)
    started = time.perf_counter()
    with fresh_database(server, "year") as year_url, ledger_on(year_url) as year, \
            fresh_database(server, "fresh") as fresh_url, ledger_on(fresh_url) as fresh:
        ledgers = [Ledger(year_url, *year), Ledger(fresh_url, *fresh)]
        kinds = simulate(ledgers[0], plan, figures)
        fill_fresh(ledgers[1], plan, kinds)
        figures.year, figures.fresh = measure(ledgers, plan)
    figures.seconds = time.perf_counter() - started
    return figures


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--jobs-per-day", type=int, default=200)
    parser.add_argument("--beats", type=int, default=45, help="heartbeats per completed job")
    parser.add_argument("--every", type=int, default=7, help="days between archive runs")
    parser.add_argument("--older-than", type=int, default=30, help="the archive's cut, days")
    parser.add_argument("--running", type=int, default=200)
    parser.add_argument("--heartbeats", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3,
                        help="heartbeat and rebuild rounds per ledger, in turns (medians)")
    parser.add_argument("--quick", action="store_true", help="a small year (the suite's)")
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.quick:
        args = parser.parse_args([*SIZES["quick"], *(argv or [])])
    return args


def main(argv: list[str] | None = None) -> YearFigures:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    plan = Plan(args.days, Mix(args.jobs_per_day), args.beats, args.every, args.older_than,
                args.running, args.heartbeats, args.threads, args.rounds)
    with start_postgres() as server:
        figures = run(server, plan)
    print(archive_year_doc.summary(figures), flush=True)
    if not args.no_doc:
        archive_year_doc.write(DOC, archive_year_doc.section(
            "python -m bench.archive_year" + "".join(f" {a}" for a in argv), figures))
    return figures


if __name__ == "__main__":
    main()
