"""Time travel and what-if benchmarks (issue 16).

``python -m bench.timetravel [--job-events N] [--events M]`` starts a throwaway PostgreSQL
(or uses ``DATABASE_URL``) and measures:

- **one job as of any of its events**: a job with N events (default 10,000: a claim and
  heartbeats, snapshots every 100 versions as the ledger takes them) read as of 1,000
  random cuts, by position (``@P``) and by time (the binary search of ADR 90 first):
  :func:`projections.job_asof.job_as_of`, p50 and p99 (the bar is p99 < 20 ms);
- **``replay stale``** over a log of M events (default 10,000,000, nearly all heartbeats:
  2,000 jobs alive at a time, each claimed, heartbeating every 10 s, one in fifty going
  silent, the rest completing), written with COPY as ``bench.projection_rebuild`` does,
  then :func:`projections.replays.replay_stale` with a 5-minute threshold and a 60-second
  interval: pages read, decoded and replayed, in events/s (the bar is 200,000).

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
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.migrate import migrate
from adapters.postgres.store import PostgresViewStore
from bench.projection_rebuild import (
    COPY_EVENTS,
    DOC,
    JOB_TOPIC,
    TOPIC,
    VACUUM_EVENTS,
    database,
)
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from projections.asof import parse_moment
from projections.job_asof import job_as_of
from projections.replays import replay_stale

SECTION = "## Time travel and what-if"
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
WAVE = 2_000
BEATS = 100
"""Heartbeats of a job that completes."""

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


def time_job_as_of(url: str, events: int, samples: int) -> dict[str, Any]:
    ledger = JobLedger(postgres_env(url))
    store = PostgresViewStore(url, EVENTS_TABLE)
    try:
        job_id = make_long_job(ledger, events)
        head = store.head()
        history = ledger.history(job_id)
        draw = random.Random(16)
        by_position: list[float] = []
        by_time: list[float] = []
        for _ in range(samples):
            n = draw.randint(1, len(history))
            for moment, out in ((f"@{n}", by_position),
                                (history[n - 1].timestamp.isoformat(), by_time)):
                started = time.perf_counter()
                found = job_as_of(store, ledger, job_id, parse_moment(moment))
                out.append(time.perf_counter() - started)
                assert found.version >= n, (moment, found.version, n)
    finally:
        store.close()
        ledger.close()
    return {"events": head, "position": _ms(by_position), "time": _ms(by_time)}


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


def time_replay(url: str, events: int) -> dict[str, Any]:
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(COPY_EVENTS) as copy:
        for row in heartbeat_log(events):
            copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(VACUUM_EVENTS)
    wrote = time.perf_counter() - started
    print(f"  wrote {events:,} events in {wrote:.1f}s", flush=True)
    store = PostgresViewStore(url, EVENTS_TABLE)
    try:
        started = time.perf_counter()
        report = replay_stale(store, threshold=timedelta(minutes=5),
                              interval=timedelta(seconds=60), start=START)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    return {"events": report.events, "seconds": elapsed, "rate": report.events / elapsed,
            "flagged": report.would_flag, "false_positives": report.false_positives}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--job-events", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = "python -m bench.timetravel" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    with database() as url:
        JobLedger(postgres_env(url)).close()
        migrate(url)
        print(f"one job with {args.job_events:,} events ...", flush=True)
        asof = time_job_as_of(url, args.job_events, args.samples)
        print(f"  as of @P: {asof['position']}; as of a time: {asof['time']}", flush=True)
    with database() as url:
        JobLedger(postgres_env(url)).close()
        print(f"replay stale over {args.events:,} events ...", flush=True)
        replay = time_replay(url, args.events)
        print(f"  {replay['events']:,} events in {replay['seconds']:.1f}s = "
              f"{replay['rate']:,.0f} events/s ({replay['flagged']} flagged)", flush=True)
    if not args.no_doc:
        write_section(_section(command, args.samples, asof, replay))
        print(f"wrote the '{SECTION}' section of {DOC}")


def _section(command: str, samples: int, asof: dict[str, Any], replay: dict[str, Any]) -> str:
    pos, at = asof["position"], asof["time"]
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        "CPUs, a throwaway PostgreSQL on the same machine (load average "
        f"{os.getloadavg()[0]:.1f} at the end: other work was running too).", "",
        "| measure | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|",
        f"| a job of {asof['events']:,} events as of `@P` ({samples:,} random events) | "
        f"{pos['p50']:.2f} | **{pos['p99']:.2f}** | {pos['max']:.2f} |",
        f"| the same as of a time (binary search for the cut first) | {at['p50']:.2f} | "
        f"**{at['p99']:.2f}** | {at['max']:.2f} |", "",
        f"`replay stale --threshold 5m --interval 60s` over {replay['events']:,} events "
        f"(nearly all heartbeats, read from PostgreSQL in pages, decoded, replayed): "
        f"{replay['seconds']:.1f} s = **{replay['rate']:,.0f} events/s** "
        f"({replay['flagged']:,} attempts flagged). The bars: p99 < 20 ms; 200,000 events/s.",
        "",
    ])


def write_section(section: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (or append it)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
