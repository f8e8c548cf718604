"""The write-path benchmark keeps running and counting right (timings are not checked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.write_path import (
    ENQUEUED,
    HEARTBEAT,
    SECTION,
    Size,
    conflict,
    count_events,
    heartbeat,
    in_batches,
    load_time,
    naive,
    new_job,
    open_ledger,
    report,
    run_all,
    start_jobs,
    write_section,
    writer,
)
from tests.support.pg import PostgresServer

TINY = Size(jobs=12, seconds=30.0, naive_max=16, batched_max=1000, conflict_batches=4,
            load_heartbeats=150, repeats=1)  # fmt: skip


@pytest.mark.postgres
def test_every_path_records_exactly_the_events_it_reports(postgres_url: str) -> None:
    ledger = open_ledger(postgres_url)
    try:
        jobs = start_jobs(ledger, 12)
        runs = [
            naive(ledger, jobs, 1, 10, 30.0),
            naive(ledger, jobs, 3, 9, 30.0),
            in_batches(ledger, lambda i: heartbeat(jobs[i % len(jobs)]), 5, 20, 30.0),
            writer(ledger, jobs, 4, 16, 30.0),
        ]
        clash = conflict(postgres_url, ledger, jobs, 4, 30.0, batch=10)
        enqueued = [in_batches(ledger, new_job, n, 3 * n, 30.0) for n in (1, 4)]
    finally:
        ledger.close()

    assert [run.events for run in runs] == [10, 9, 20, 16]
    assert [len(run.latencies) for run in runs] == [10, 9, 0, 16]
    # Two of the four conflict batches met a heartbeat from the second ledger (5 jobs
    # each); each was decided once more, and nothing was dropped or applied twice.
    assert (clash.events, clash.logged) == (40, 50)
    assert clash.notes["clashed"] == clash.notes["extra rounds"] == 2
    assert count_events(postgres_url, HEARTBEAT) == 10 + 9 + 20 + 16 + 50
    assert [run.events for run in enqueued] == [3, 12]
    assert count_events(postgres_url, ENQUEUED) == 12 + 3 + 12


@pytest.mark.postgres
@pytest.mark.parametrize(("interval", "replayed"), [(100, 52), (0, 152)])
def test_load_time_reads_the_whole_job(postgres_url: str, interval: int, replayed: int) -> None:
    run = load_time(postgres_url, heartbeats=150, interval=interval, loads=2)
    assert run.events == 2
    assert run.notes == {"version": 152, "replayed": replayed}


@pytest.mark.postgres
def test_the_whole_bench_writes_its_section_only(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    results = run_all(postgres_server, TINY)
    section = report(results, ["- Machine: test"], [1000.0], TINY)
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\n{SECTION}\n\nold figures\n\n## Projection rebuild\n\nkept\n")
    write_section(doc, section)
    write_section(doc, section)
    text = doc.read_text()
    assert "old figures" not in text
    assert text.count(SECTION) == 1
    assert text.endswith("## Projection rebuild\n\nkept\n")
    assert "| naive, 1 thread |" in text
    assert "| load: snapshot_interval=0 |" in text
