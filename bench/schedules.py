"""Cron schedules benchmark (issue 18, ADR 130).

``python -m bench.schedules [--schedules N] [--tickers K] [--baseline N]`` starts a
throwaway PostgreSQL (or uses ``DATABASE_URL``), adds N schedules ``* * * * *`` all due
in the same minute, and runs K schedule tickers (each with a ledger and a session of its
own, as K ``ledger serve`` would; one holds the ticker lock and fires, the others stand
by) beside the projection runner, on a clock shifted so that the minute starts two
seconds later. It measures, against the bar (issue 18: each tick enqueued once, all within 5 s of
its time) and a baseline in the same run:

- **exactly once**: ``TickEnqueued`` events and enqueued jobs, against N;
- **lateness**: each tick's enqueue time minus its time (the event's ``late``), p50, p99
  and max;
- **baseline**: the same ticks fired one schedule per transaction (``fire_due`` with one
  id) on a smaller set, as ticks per second against the tickers' batched rate.

It prints the figures and writes them into docs/benchmarks.md under its own section.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import anyio
import psycopg
from psycopg import sql

from adapters.postgres.backend import EVENTS_TABLE
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.parts import projection_part
from adapters.service.schedules import CHUNK, ScheduleTicker
from adapters.service.settings import Settings
from bench import projection_rebuild
from bench.projection_rebuild import database
from ledger.schedule import Schedule, ScheduleSpec, schedule_id
from ledger.schedule_book import ScheduleBook
from projections.registry import VIEWS
from projections.runner import Runner

DOC = projection_rebuild.DOC
SECTION = "## Cron schedules: 10,000 ticks due in the same minute"
LEAD = timedelta(seconds=2)
COUNT_TICKS = sql.SQL(
    "SELECT count(*), count(DISTINCT originator_id) FROM {table} WHERE topic = %s"
)
TICK_TOPIC = "ledger.schedule:Schedule.TickEnqueued"
JOB_TOPIC = "ledger.job:Job.Enqueued"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def containers(url: str, count: int) -> Iterator[list[Container]]:
    wired = [build(Settings(database_url=url)) for _ in range(count)]
    try:
        yield wired
    finally:
        for container in wired:
            container.close()


def add_schedules(container: Container, names: Sequence[str], now: datetime) -> None:
    """N schedules due at the next minute, saved 500 per transaction."""
    for start in range(0, len(names), 500):
        added = [
            Schedule.add(ScheduleSpec(name=n, cron="* * * * *", queue="bench-schedules",
                                      payload={"n": n}), "bench", None, now)
            for n in names[start:start + 500]
        ]
        container.ledger.save(*added)


def feed(container: Container) -> None:
    store = container.backend.open_views()
    try:
        runner = Runner(store, [VIEWS["schedules"]])
        runner.acquire()
        while runner.step():
            pass
        runner.release()
    finally:
        store.close()


def lateness(container: Container, names: Sequence[str]) -> list[float]:
    out = []
    for name in names:
        events = container.ledger.events.get(schedule_id(name))
        out += [e.late for e in events if isinstance(e, Schedule.TickEnqueued)]
    return out


def time_tickers(url: str, count: int, tickers: int) -> dict[str, Any]:
    names = [f"bench-{i:06d}" for i in range(count)]
    with containers(url, tickers) as wired:
        start = utc_now()
        add_schedules(wired[0], names, start)
        feed(wired[0])
        minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        offset = minute - LEAD - utc_now()

        def clock() -> datetime:
            return utc_now() + offset

        sessions = [c.backend.open_views() for c in wired]
        parts = [ScheduleTicker(s, c.ledger, clock=clock, actor=f"bench-ticker-{i}")
                 for i, (s, c) in enumerate(zip(sessions, wired, strict=True))]

        async def run() -> float:
            async with anyio.create_task_group() as group:
                await group.start(projection_part(wired[0], poll_interval=0.1))
                for part in parts:
                    group.start_soon(part)
                with anyio.fail_after(120):
                    while sum(p.enqueued for p in parts) < count:
                        await anyio.sleep(0.05)
                    done = clock()
                    await anyio.sleep(1.0)  # any second firing would show up now
                group.cancel_scope.cancel()
            return (done - minute).total_seconds()

        try:
            all_done = anyio.run(run)
        finally:
            for session in sessions:
                session.close()
        with psycopg.connect(url) as conn:
            query = COUNT_TICKS.format(table=sql.Identifier(EVENTS_TABLE))
            events, schedules = conn.execute(query, (TICK_TOPIC,)).fetchone() or (0, 0)
            jobs = (conn.execute(query, (JOB_TOPIC,)).fetchone() or (0, 0))[0]
        late = lateness(wired[-1], names)
    return {
        "count": count, "tickers": tickers, "tick_events": int(events),
        "schedules_fired": int(schedules), "jobs": int(jobs),
        "enqueued_by_tickers": sum(p.enqueued for p in parts),
        "late_p50": pct(late, 0.5), "late_p99": pct(late, 0.99), "late_max": max(late),
        "all_done_after": all_done, "rate": count / max(all_done + LEAD.total_seconds(), 1e-9),
    }


def time_one_by_one(url: str, count: int) -> dict[str, Any]:
    """The baseline: each tick in a transaction of its own."""
    names = [f"base-{i:06d}" for i in range(count)]
    with containers(url, 1) as (container,):
        start = utc_now()
        add_schedules(container, names, start)
        due = start.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=1)
        book = ScheduleBook(container.ledger)
        began = time.perf_counter()
        for name in names:
            book.fire_due([schedule_id(name)], due, "baseline")
        seconds = time.perf_counter() - began
    return {"count": count, "seconds": seconds, "rate": count / seconds}


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--tickers", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = "python -m bench.schedules" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    figures: dict[str, dict[str, Any]] = {}
    with database() as url:
        print("tickers ...", flush=True)
        figures["tickers"] = time_tickers(url, args.schedules, args.tickers)
        print(f"  {figures['tickers']}", flush=True)
        print("baseline ...", flush=True)
        figures["baseline"] = time_one_by_one(url, args.baseline)
        print(f"  {figures['baseline']}", flush=True)
    if not args.no_doc:
        write_section(section(command, figures))
        print(f"wrote the '{SECTION}' section of {DOC}")
    return figures


def section(command: str, f: dict[str, dict[str, Any]]) -> str:
    t, b = f["tickers"], f["baseline"]
    once = t["tick_events"] == t["schedules_fired"] == t["jobs"] == t["count"]
    ok = {True: "yes", False: "**no**"}
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {utc_now():%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        "CPUs, a throwaway PostgreSQL on the same machine (load average "
        f"{os.getloadavg()[0]:.1f} at the end: other engineers' test runs shared the "
        "machine).", "",
        "| measure | figure | bar or baseline | met |", "|---|---:|---:|---|",
        f"| {t['count']:,} schedules due in one minute, {t['tickers']} tickers: tick events "
        f"/ schedules fired / jobs | {t['tick_events']:,} / {t['schedules_fired']:,} / "
        f"{t['jobs']:,} | {t['count']:,} each (exactly once) | {ok[once]} |",
        f"| lateness of a tick (enqueue time minus its time), p50 / p99 / max | "
        f"{t['late_p50']:.2f} s / {t['late_p99']:.2f} s / {t['late_max']:.2f} s | 5 s | "
        f"{ok[t['late_max'] <= 5.0]} |",
        f"| all ticks enqueued after the minute began | {t['all_done_after']:.2f} s | 5 s | "
        f"{ok[t['all_done_after'] <= 5.0]} |",
        f"| firing rate, batched ({CHUNK} per transaction; one of {t['tickers']} tickers "
        "fires, the others stand by) | "
        f"{t['count'] / max(t['all_done_after'], 1e-3):,.0f} ticks/s | one tick per "
        f"transaction, 1 ticker: {b['rate']:,.0f} ticks/s ({b['count']:,} ticks) | "
        f"{t['count'] / max(t['all_done_after'], 1e-3) / b['rate']:.1f}x |",
        "",
        "The tickers run on a clock shifted so that the minute begins two seconds after they "
        "start; the one holding the ticker lock reads the due schedules from the `schedules` "
        f"view's partial index and fires {CHUNK} per transaction (each schedule's "
        "`TickEnqueued` with its job's `Enqueued`), deciding on the view's rows; exactly "
        "once does not rest on the lock but on the schedule's version, which "
        "`tests/integration/test_schedule_ticks.py` checks with three tickers racing "
        "([ADR 130](adr/0130-schedules.md)).", "",
    ])


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
    main()
