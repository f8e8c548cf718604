"""Archive segments (issue 17, ADR 110): ``python -m bench.archive [--jobs N] [--beats N]``
starts a throwaway PostgreSQL (or uses ``DATABASE_URL``) and measures, on a simulated
history of ended jobs written with COPY (each job: enqueued, claimed, ``beats``
heartbeats, completed; the stored events of one real job copied under new ids):

- archive throughput: ``run_archive`` over every job (checkpoints of every view, the
  selection, building, writing, re-reading and verifying the segments, and the one
  transaction that deletes the events), in events/s; the bar is 200,000 events/s; the
  baseline in the same run is reading the same events (``events_of``) alone;
- compressed bytes per event in the segments against the hot table's bytes per row
  (``pg_total_relation_size`` of the events table, indexes included, over its rows);
- one archived job read as ``ledger jobs show`` reads it (``get_job`` + ``history`` in
  process, from a local segment), p50/p99 over ``--shows`` random jobs, against the same
  for jobs still in the hot table; the bar is p99 < 50 ms.
- the floor under an archive, in the same run: PostgreSQL alone handing as many events
  out once (binary COPY) and deleting them (one DELETE) (ADR 111);
- the events table's size after ``--rounds`` more archives of a quarter as many new
  jobs, each followed by autovacuum (migration 0045; waited for, up to 2 minutes): the
  hot table stays bounded without a VACUUM in the archive.

It prints the figures and writes them into docs/benchmarks.md under its own section.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg

from adapters.service.archive import run_archive
from adapters.service.archive_reader import segment_store
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from bench import projection_rebuild
from bench.common import load_note
from ledger.commands import ClaimJob, CompleteJob, EnqueueJob, RecordHeartbeat
from projections.job_status import JOB_STATUS
from projections.registry import VIEWS

DOC = projection_rebuild.DOC
"""Where the section goes (``python -m bench`` points it at its own output)."""
SECTION = "## Archive segments: throughput, bytes per event, an archived job's read"
OLD = datetime(2025, 1, 6, tzinfo=UTC)


def template(container: Any, beats: int) -> list[tuple[int, str, bytes]]:
    """One real job's stored events: (version, topic, state)."""
    ledger, now = container.ledger, OLD
    job = ledger.execute(EnqueueJob(customer_id="bench"), now)
    claimed = ledger.execute(ClaimJob(job_id=job.job_id, worker_id="w"), now)
    for _ in range(beats):
        ledger.execute(RecordHeartbeat(job_id=job.job_id, attempt=claimed.attempt,
                                       worker_id="w"), now)
    ledger.execute(CompleteJob(job_id=job.job_id, attempt=claimed.attempt, worker_id="w"), now)
    stored = ledger.recorder.select_events(job.job_id)
    return [(e.originator_version, e.topic, e.state) for e in stored]


def seed(url: str, events: list[tuple[int, str, bytes]], jobs: int) -> list[UUID]:
    """``jobs`` copies of the template job, their job_status rows, every view at the head."""
    ids = [uuid4() for _ in range(jobs)]
    row = {c.name: None for c in JOB_STATUS.columns} | {
        "customer_id": "bench", "queue": "default", "status": "completed", "attempt": 1,
        "attempts_used": 1, "max_attempts": 3, "enqueued_at": OLD, "finished_at": OLD,
        "heartbeats": len(events) - 3, "refused_reports": 0, "version": len(events),
        "updated_at": OLD, "priority": 0, "cancel_requested": 0,
    }
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY jobledger_events (originator_id, originator_version, topic, state)"
                      " FROM STDIN") as copy:
            for job_id in ids:
                for version, topic, state in events:
                    copy.write_row((job_id, version, topic, state))
        names = ", ".join(JOB_STATUS.names)
        with cur.copy(f"COPY job_status ({names}) FROM STDIN") as copy:
            for job_id in ids:
                copy.write_row(tuple((row | {"job_id": job_id})[n] for n in JOB_STATUS.names))
        cur.execute("SELECT max(notification_id) FROM jobledger_events")
        head = cur.fetchone()[0]  # type: ignore[index]
        for view in VIEWS:
            cur.execute(
                "INSERT INTO projection_tracking (view_name, position) VALUES (%s, %s) "
                "ON CONFLICT (view_name) DO UPDATE SET position = excluded.position",
                (view, head),
            )
        cur.execute("ANALYZE jobledger_events")
        cur.execute("ANALYZE job_status")
    return ids


def hot_bytes_per_row(url: str) -> tuple[float, int]:
    with psycopg.connect(url) as conn:
        size, rows = conn.execute(
            "SELECT pg_total_relation_size('jobledger_events'), count(*) FROM jobledger_events"
        ).fetchone()  # type: ignore[misc]
    return size / rows, rows


def show_ms(container: Any, ids: list[UUID], shows: int) -> list[float]:
    ledger = container.ledger
    times = []
    for job_id in random.sample(ids, min(shows, len(ids))):
        ledger.forget()
        started = time.perf_counter()
        ledger.get_job(job_id)
        ledger.history(job_id)
        times.append((time.perf_counter() - started) * 1000)
    return times


def server_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server at ``url`` (its postmaster, every
    live child, and the children it has reaped: a closed session's backend), when it runs
    on this machine; else 0."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    try:
        pid = int((Path(str(row[0])) / "postmaster.pid").read_text().split()[0])  # type: ignore[index]
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid:  # with its reaped children (closed sessions)
            ticks += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == pid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


FLOOR_READ = ("COPY (SELECT notification_id, originator_id, originator_version, topic, state "
              "FROM jobledger_events WHERE originator_id = ANY(%s)) TO STDOUT (FORMAT binary)")
FLOOR_DELETE = "DELETE FROM jobledger_events WHERE originator_id = ANY(%s)"
TABLE_STATS = ("SELECT pg_total_relation_size('jobledger_events'), n_dead_tup, autovacuum_count "
               "FROM pg_stat_user_tables WHERE relname = 'jobledger_events'")


def floor_seconds(url: str, ids: list[UUID]) -> tuple[float, float, float]:
    """PostgreSQL's own time to hand ``ids``' events out once (binary COPY, read and
    dropped) and to delete them (one committed DELETE): the floor under an archive; and
    the CPU-seconds both took (this process and the server)."""
    cpu, pg_cpu = time.process_time(), server_cpu(url)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(FLOOR_READ, (ids,)) as copy:
            for _ in copy:
                pass
        read = time.perf_counter() - started
        conn.commit()
        started = time.perf_counter()
        cur.execute(FLOOR_DELETE, (ids,))
        conn.commit()
        delete = time.perf_counter() - started
    return read, delete, time.process_time() - cpu + server_cpu(url) - pg_cpu


def table_stats(url: str) -> tuple[int, int, int]:
    """The events table's size (with indexes), dead rows and autovacuum runs."""
    with psycopg.connect(url) as conn:
        row = conn.execute(TABLE_STATS).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def wait_for_autovacuum(url: str, runs: int, timeout: float) -> float:
    """Seconds until autovacuum has run on the events table more than ``runs`` times
    (``timeout`` at most)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout and table_stats(url)[2] <= runs:
        time.sleep(1)
    return time.perf_counter() - started


def rounds(container: Any, store: Any, url: str, events: list[Any], *, jobs: int,
           count: int) -> list[dict[str, Any]]:
    """``count`` rounds of a day's new jobs archived: after each, autovacuum is waited
    for and the events table's size taken (bounded if the archived rows are reclaimed)."""
    taken = []
    for n in range(count):
        runs = table_stats(url)[2]
        seed(url, events, jobs)
        later = datetime.now(UTC) + timedelta(days=2 * (n + 1))  # past the last checkpoint
        report = run_archive(container.backend, store, timedelta(days=1), later)
        waited = wait_for_autovacuum(url, runs, 120.0)
        size, dead, _ = table_stats(url)
        taken.append({"events": report.events, "size": size, "dead": dead, "waited": waited})
        print(taken[-1], flush=True)
    return taken


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def run(url: str, jobs: int, beats: int, shows: int, rounds_count: int = 0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(database_url=url, ledger_data_dir=Path(data))
        container = build(settings)
        try:
            events = template(container, beats)
            ids = seed(url, events, jobs)
            hot_row, hot_rows = hot_bytes_per_row(url)
            hot_ids = ids[:max(shows, 10)]
            hot_show = show_ms(container, hot_ids, shows)
            tables = container.backend.archive()
            started = time.perf_counter()
            tables.events_of(ids)
            read_seconds = time.perf_counter() - started
            tables.close()
            store = segment_store(settings)
            started, cpu, pg_cpu = time.perf_counter(), time.process_time(), server_cpu(url)
            report = run_archive(container.backend, store, timedelta(days=1),
                                 datetime.now(UTC))
            seconds = time.perf_counter() - started
            cpu, pg_cpu = time.process_time() - cpu, server_cpu(url) - pg_cpu
            size_after = table_stats(url)[0]
            archived_show = show_ms(container, ids, shows)
            steady = rounds(container, store, url, events, jobs=max(jobs // 4, 1),
                            count=rounds_count)
            floor_read, floor_delete, floor_cpu = floor_seconds(url, seed(url, events, jobs))
            store.close()
        finally:
            container.close()
    return {
        "jobs": report.jobs, "events": report.events, "per_job": len(events),
        "seconds": seconds, "rate": report.events / seconds, "cpu": cpu, "pg_cpu": pg_cpu,
        "cpu_rate": report.events / (cpu + pg_cpu),
        "read_rate": report.events / read_seconds, "segments": len(report.segments),
        "segment_bytes": report.bytes, "bytes_per_event": report.bytes / report.events,
        "hot_bytes_per_row": hot_row, "hot_rows": hot_rows,
        "show_p50": statistics.median(archived_show), "show_p99": p99(archived_show),
        "hot_show_p50": statistics.median(hot_show), "hot_show_p99": p99(hot_show),
        "shows": len(archived_show), "load": os.getloadavg()[0],
        "floor_read": floor_read, "floor_delete": floor_delete,
        "floor_rate": report.events / (floor_read + floor_delete), "floor_cpu": floor_cpu,
        "size_after": size_after, "rounds": steady,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--beats", type=int, default=45)
    parser.add_argument("--shows", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3,
                        help="archives of a quarter as many new jobs after the first, each "
                             "waiting for autovacuum (up to 2 minutes): the table's size")
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = "python -m bench.archive" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    with projection_rebuild.database() as url:
        figures = run(url, args.jobs, args.beats, args.shows, args.rounds)
    print(figures, flush=True)
    if not args.no_doc:
        write_section(section(command, figures))


def section(command: str, f: dict[str, Any]) -> str:
    ok = {True: "yes", False: "**no**"}
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"CPUs, a throwaway PostgreSQL on the same machine ({load_note()}). A "
        f"simulated history far smaller than the issue's year: {f['jobs']:,} ended jobs of "
        f"{f['per_job']} events each ({f['events']:,} events), written with COPY.", "",
        "| measure | figure | bar or baseline | met |", "|---|---:|---:|---|",
        f"| archive throughput (checkpoints, selection, build, write, re-read and verify, "
        f"the deleting transaction; {f['segments']} segment(s)) | **{f['rate']:,.0f} "
        f"events/s** ({f['seconds']:.1f} s) | 200,000 events/s; reading the same events "
        f"alone: {f['read_rate']:,.0f} events/s | {ok[f['rate'] >= 200_000]} |",
        f"| the same archive in CPU time: this process {f['cpu']:.1f} s + its PostgreSQL "
        f"server {f['pg_cpu']:.1f} s | **{f['cpu_rate']:,.0f} events per CPU-second** | "
        "what an unloaded core would do if the two did not overlap | - |",
        f"| bytes per event, compressed in segments, against the hot table | "
        f"**{f['bytes_per_event']:.1f} B** | {f['hot_bytes_per_row']:.0f} B per row of the "
        f"events table with its indexes ({f['hot_rows']:,} rows): "
        f"{f['hot_bytes_per_row'] / f['bytes_per_event']:.0f}x smaller | - |",
        f"| an archived job read as `ledger jobs show` reads it (get_job + history, in "
        f"process, local segment, {f['shows']} jobs): p50 / p99 | {f['show_p50']:.1f} / "
        f"**{f['show_p99']:.1f} ms** | 50 ms; a hot job: {f['hot_show_p50']:.1f} / "
        f"{f['hot_show_p99']:.1f} ms | {ok[f['show_p99'] < 50]} |",
        f"| PostgreSQL alone on as many events, the floor under an archive: hand them out "
        f"once (binary COPY, {f['floor_read']:.1f} s) and delete them (one DELETE, "
        f"{f['floor_delete']:.1f} s) | {f['floor_rate']:,.0f} events/s | the archive's "
        f"wall time is {f['seconds'] / (f['floor_read'] + f['floor_delete']):.1f}x this; "
        f"in CPU-seconds {f['floor_cpu']:.1f} against the archive's "
        f"{f['cpu'] + f['pg_cpu']:.1f} ({(f['cpu'] + f['pg_cpu']) / f['floor_cpu']:.1f}x) "
        "| - |",
        *_rounds_row(f), "",
        "Reading: the wall-clock rate is the machine's load as much as the archive's (the "
        "PostgreSQL server and this process wait for a CPU); the CPU-time row is the "
        "figure to compare across runs. The archive on PostgreSQL makes no Python object "
        "per event: each frame is the output of one `COPY ... TO STDOUT (FORMAT binary)` "
        "of its block of jobs, a chunk of frames at a time read on a thread while this process "
        "compresses the previous chunk (ADR 111), re-reads and hashes the segment; the "
        "deleting transaction probes each job's key for an event outside the segment's "
        "versions and deletes plainly, comparing the count. "
        "No VACUUM runs in the archive: the events table's autovacuum threshold "
        "(migration 0045) has PostgreSQL reclaim the rows in the background. "
        "Every simulated job copies the stored events of one real job, so the "
        "segments' frames repeat the same event bodies and zstd's ratio here is better than "
        "on real heartbeats (whose times differ); take the bytes per event as a floor. "
        "The baseline column reads the same events into Python rows (`events_of`, the "
        "SQLite path and the previous PostgreSQL path). "
        "Both read figures are in process: a `ledger jobs show` process adds its "
        "start-up. A simulated year at the issue's scale (1.6 billion events) was not run.",
        "",
    ])


def _rounds_row(f: dict[str, Any]) -> list[str]:
    taken = f["rounds"]
    if not taken:
        return []
    sizes = ", ".join(f"{r['size'] / 2**20:,.0f}" for r in taken)
    waits = ", ".join(f"{r['waited']:.0f}" for r in taken)
    return [
        f"| the events table (with indexes) after the archive, then after {len(taken)} more "
        f"rounds of {taken[0]['events']:,} new events archived, each followed by "
        f"autovacuum (waited {waits} s) | {f['size_after'] / 2**20:,.0f} MiB, then "
        f"{sizes} MiB | without reclaiming, each round would add its rows' "
        f"{taken[0]['events'] * f['hot_bytes_per_row'] / 2**20:,.0f} MiB | - |",
    ]


def write_section(text_section: str) -> None:
    """Replace this benchmark's section of :data:`DOC` (or append it)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: text_section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + text_section.rstrip("\n") + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
