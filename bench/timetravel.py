"""Time travel and what-if benchmarks (issue 16).

``python -m bench.timetravel [--quick] [--job-events N] [--events M]`` starts a throwaway
PostgreSQL (or uses ``DATABASE_URL``) and measures, each against a baseline in the same run:

- **one job as of any of its events**: a job with N events (default 10,000: a claim and
  heartbeats, snapshots every 100 versions as the ledger takes them) read as of 1,000
  random cuts, by position (``@P``) and by time (the binary search of ADR 90 first):
  :func:`projections.job_asof.job_as_of`, p50 and p99 (the bar is p99 < 20 ms); the
  baseline folds the job from its first event at the same cuts (no snapshot:
  eventsourcing's event store and ``project_aggregate``), on 100 of them;
- **``replay stale``** over a log of M events (default 10,000,000, nearly all heartbeats:
  2,000 jobs alive at a time, each claimed, heartbeating every 10 s, one in fifty going
  silent, the rest completing), written with COPY as ``bench.projection_rebuild`` does,
  then :func:`projections.replays.replay_stale` with a 5-minute threshold and a 60-second
  interval: pages read, decoded and replayed, in events/s (the bar is 200,000); the
  baseline reads the first 500,000 of the same events the framework's way
  (eventsourcing's ``select_notifications`` and mapper), without replaying them.

It prints the figures and writes them into docs/benchmarks.md under its own section.
``python -m bench`` runs it too (:func:`run`, at the size of its mode).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from eventsourcing.application import project_aggregate

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.migrate import migrate
from adapters.postgres.store import PostgresViewStore
from bench.common import load_note, mark
from bench.projection_rebuild import COPY_EVENTS, DOC, JOB_TOPIC, TOPIC, VACUUM_EVENTS
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from projections.asof import parse_moment
from projections.job_asof import job_as_of
from projections.replays import replay_stale
from tests.support.pg import PostgresServer, start_postgres

SECTION = "## Time travel and what-if"
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
WAVE = 2_000
BEATS = 100
"""Heartbeats of a job that completes."""
PAGE = 5_000
"""The baseline's page of notifications."""
JOB_BAR_MS = 20.0
REPLAY_BAR = 200_000.0


@dataclass(frozen=True)
class Size:
    job_events: int
    samples: int
    baseline_samples: int
    events: int
    baseline_events: int


FULL = Size(10_000, 1_000, 100, 10_000_000, 500_000)
QUICK = Size(2_000, 200, 20, 200_000, 50_000)
TINY = Size(300, 30, 5, 20_000, 5_000)

_encode = msgspec.json.Encoder().encode


def make_long_job(ledger: JobLedger, events: int) -> uuid.UUID:
    """One job with ``events`` events (enqueue, claim, heartbeats), 1 ms apart."""
    at = START
    job_id = ledger.execute(EnqueueJob(customer_id="bench"), at).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), at + timedelta(milliseconds=1))
    left = events - 2
    while left > 0:
        batch = min(left, 25)  # heartbeats arrive a few at a time: snapshots every ~100
        at += timedelta(seconds=1)
        commands = [RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w")] * batch
        ledger.execute_batch(commands, at)
        left -= batch
    return job_id


def time_job_as_of(url: str, size: Size) -> dict[str, Any]:
    ledger = JobLedger(postgres_env(url))
    store = PostgresViewStore(url, EVENTS_TABLE)
    try:
        job_id = make_long_job(ledger, size.job_events)
        head = store.head()
        history = ledger.history(job_id)
        draw = random.Random(16)
        cuts = [draw.randint(1, len(history)) for _ in range(size.samples)]
        by_position: list[float] = []
        by_time: list[float] = []
        for n in cuts:
            for moment, out in ((f"@{n}", by_position),
                                (history[n - 1].timestamp.isoformat(), by_time)):
                started = time.perf_counter()
                found = job_as_of(store, ledger, job_id, parse_moment(moment))
                out.append(time.perf_counter() - started)
                assert found.version >= n, (moment, found.version, n)
        baseline = [_fold_from_the_start(ledger, job_id, n)
                    for n in cuts[: size.baseline_samples]]  # fmt: skip
    finally:
        store.close()
        ledger.close()
    return {"events": head, "position": _ms(by_position), "time": _ms(by_time),
            "baseline": _ms(baseline), "baseline_samples": len(baseline)}


def _fold_from_the_start(ledger: JobLedger, job_id: uuid.UUID, version: int) -> float:
    """Seconds to fold the job's events 1..version without a snapshot."""
    started = time.perf_counter()
    job: Any = project_aggregate(None, ledger.events.get(job_id, lte=version))
    assert job.version == version
    return time.perf_counter() - started


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered) * 1000,
            "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
            "max": ordered[-1] * 1000}


def heartbeat_log(events: int) -> Iterator[tuple[uuid.UUID, int, str, bytes]]:
    """Waves of jobs whose claims and heartbeats interleave, 5 ms apart (each job beats
    every 10 s); one in fifty goes silent halfway, the others complete."""
    written, n, at = 0, 0, START
    step = timedelta(milliseconds=5)
    while written < events:
        wave = [(uuid.uuid4(), n + i) for i in range(WAVE)]
        n += WAVE
        for beat in range(BEATS + 3):
            for job_id, k in wave:
                if written >= events:
                    return
                if k % 50 == 0 and beat >= BEATS // 2:
                    continue  # its worker died: no more heartbeats, no completion
                name, fields = _life(k, beat)
                at += step
                yield job_id, beat + 1, TOPIC[name], _encode({"timestamp": _stamp(at), **fields})
                written += 1


def _life(k: int, beat: int) -> tuple[str, dict[str, Any]]:
    worker = f"worker-{k % 50}"
    if beat == 0:
        return "Enqueued", {"originator_topic": JOB_TOPIC, "customer_id": f"c{k % 97}",
                            "queue": "default", "payload": {"n": k}, "max_attempts": 3,
                            "idempotency_key": None}
    if beat == 1:
        return "Claimed", {"attempt": 1, "worker_id": worker, "worker_time": None}
    if beat == BEATS + 2:
        return "Completed", {"attempt": 1, "worker_id": worker, "result": None,
                             "worker_time": None}
    return "HeartbeatRecorded", {"attempt": 1, "worker_id": worker, "worker_time": None}


def _stamp(at: datetime) -> dict[str, str]:
    return {"_type_": "datetime_iso", "_data_": at.isoformat()}


def time_replay(url: str, size: Size) -> dict[str, Any]:
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(COPY_EVENTS) as copy:
        for row in heartbeat_log(size.events):
            copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(VACUUM_EVENTS)
    wrote = time.perf_counter() - started
    print(f"  wrote {size.events:,} events in {wrote:.1f}s", flush=True)
    store = PostgresViewStore(url, EVENTS_TABLE)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        report = replay_stale(store, threshold=timedelta(minutes=5),
                              interval=timedelta(seconds=60), start=START)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        store.close()
    base_events, base_seconds = _read_the_framework_way(url, size.baseline_events)
    return {"events": report.events, "seconds": elapsed, "rate": report.events / elapsed,
            "cpu": cpu, "flagged": report.would_flag,
            "false_positives": report.false_positives, "baseline_events": base_events,
            "baseline_rate": base_events / base_seconds if base_seconds else 0.0}


def _read_the_framework_way(url: str, events: int) -> tuple[int, float]:
    """The baseline: the first ``events`` events read through eventsourcing's
    ``select_notifications`` and mapped to domain events (nothing replayed)."""
    ledger = JobLedger(postgres_env(url))
    read, start = 0, 1
    try:
        started = time.perf_counter()
        while read < events:
            page = ledger.recorder.select_notifications(start, min(PAGE, events - read))
            if not page:
                break
            for notification in page:
                ledger.mapper.to_domain_event(notification)
            read, start = read + len(page), page[-1].id + 1
        return read, time.perf_counter() - started
    finally:
        ledger.close()


@contextlib.contextmanager
def _database(server: PostgresServer, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = server.create_database(name)
    try:
        JobLedger(postgres_env(url)).close()  # eventsourcing's tables
        migrate(url)
        yield url
    finally:
        server.drop_database(name)


def run(server: PostgresServer, size: Size) -> dict[str, Any]:
    """Both measures on ``server``, each in a database of its own (dropped after)."""
    with _database(server, "bench_job_asof") as url:
        print(f"one job with {size.job_events:,} events ...", flush=True)
        asof = time_job_as_of(url, size)
        print(f"  as of @P: {asof['position']}; as of a time: {asof['time']}; "
              f"from the first event: {asof['baseline']}", flush=True)
    with _database(server, "bench_replay") as url:
        print(f"replay stale over {size.events:,} events ...", flush=True)
        replay = time_replay(url, size)
        print(f"  {replay['events']:,} events in {replay['seconds']:.1f}s = "
              f"{replay['rate']:,.0f} events/s ({replay['flagged']} flagged); eventsourcing's "
              f"read {replay['baseline_rate']:,.0f} events/s", flush=True)
    return {"asof": asof, "replay": replay, "samples": size.samples}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--job-events", type=int)
    parser.add_argument("--samples", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    size = Size(args.job_events or base.job_events, args.samples or base.samples,
                base.baseline_samples, args.events or base.events, base.baseline_events)
    command = "python -m bench.timetravel" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    with start_postgres() as server:
        figures = run(server, size)
    if not args.no_doc:
        write_section(section(command, figures))
        print(f"wrote the '{SECTION}' section of {DOC}")
    return figures


def section(command: str, figures: dict[str, Any]) -> str:
    asof, replay, samples = figures["asof"], figures["replay"], figures["samples"]
    pos, at, base = asof["position"], asof["time"], asof["baseline"]
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        "CPUs, a throwaway PostgreSQL on the same machine ("
        f"{load_note()}).", "",
        "| measure | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|",
        f"| a job of {asof['events']:,} events as of `@P` ({samples:,} random events) | "
        f"{pos['p50']:.2f} | **{pos['p99']:.2f}** | {pos['max']:.2f} |",
        f"| the same as of a time (binary search for the cut first) | {at['p50']:.2f} | "
        f"**{at['p99']:.2f}** | {at['max']:.2f} |",
        f"| baseline: folded from its first event, no snapshot ({asof['baseline_samples']} "
        f"of the cuts) | {base['p50']:.2f} | {base['p99']:.2f} | {base['max']:.2f} |", "",
        f"`replay stale --threshold 5m --interval 60s` over {replay['events']:,} events "
        f"(nearly all heartbeats, read from PostgreSQL in pages on a thread, decoded, "
        f"replayed): {replay['seconds']:.1f} s = **{replay['rate']:,.0f} events/s** "
        f"({replay['cpu']:.1f} s of CPU in the benchmark's process; "
        f"{replay['flagged']:,} attempts flagged). Baseline: the first "
        f"{replay['baseline_events']:,} of them read the framework's way (eventsourcing's "
        f"`select_notifications` and mapper, nothing replayed): "
        f"{replay['baseline_rate']:,.0f} events/s; the replay reads, decodes and replays "
        f"{replay['rate'] / max(replay['baseline_rate'], 1):.1f}x as fast.",
        "",
        f"The bars: p99 < {JOB_BAR_MS:g} ms ({mark(pos['p99'] < JOB_BAR_MS)} by position, "
        f"{mark(at['p99'] < JOB_BAR_MS)} by time); {REPLAY_BAR:,.0f} events/s "
        f"({mark(replay['rate'] >= REPLAY_BAR)}).", "",
    ])


def write_section(text: str, path: Path = DOC) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    path.write_text(doc)


if __name__ == "__main__":
    main()
