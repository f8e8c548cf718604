"""Cron schedules fire each tick exactly once with any number of tickers (ADR 130).

Three tickers (three ledgers, as three ``ledger serve`` processes would have, each with a
session of its own) run their rounds at the same moments through 100 minutes of a fake
clock, on PostgreSQL and SQLite; a ticker process killed with SIGKILL in the middle of
firing hundreds of ticks leaves each tick fired once or not at all, and the next ticker
fires the rest; a paused schedule fires nothing until resumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from adapters.service.bootstrap import Container, build
from adapters.service.schedules import ScheduleTicker
from adapters.service.settings import Settings
from ledger.job_ids import idempotent_job_id
from ledger.schedule import Schedule, ScheduleSpec, schedule_id, tick_key
from ledger.schedule_book import ScheduleBook
from ledger.status import Status
from projections.queries.job_status import JobStatusQueries
from projections.queries.schedules import ScheduleQueries
from projections.registry import VIEWS
from projections.runner import Runner
from projections.store import ViewStore

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
T0 = datetime(2026, 3, 28, 23, 0, 30, tzinfo=UTC)  # the night Paris moves its clocks


@pytest.fixture
def settings(store: str, store_url: str | None, tmp_path: Path) -> Settings:
    return Settings(ledger_data_dir=tmp_path / "data", database_url=store_url)


@pytest.fixture
def containers(settings: Settings) -> Iterator[list[Container]]:
    wired = [build(settings) for _ in range(3)]
    yield wired
    for container in wired:
        container.close()


def feed_views(container: Container) -> None:
    store = container.backend.open_views()
    try:
        runner = Runner(store, list(VIEWS.values()))
        runner.acquire()
        while runner.step():
            pass
        runner.release()
    finally:
        store.close()


def tick_events(container: Container, name: str) -> list[Schedule.TickEnqueued]:
    events = container.ledger.events.get(schedule_id(name))
    return [e for e in events if isinstance(e, Schedule.TickEnqueued)]


def add(container: Container, names: dict[str, str], now: datetime) -> None:
    book = ScheduleBook(container.ledger)
    for name, zone in names.items():
        book.add(ScheduleSpec(name=name, cron="* * * * *", queue="reports", timezone=zone,
                              payload={"schedule": name}), "test", None, now)


SCHEDULES = {"utc": "UTC", "paris": "Europe/Paris", "tokyo": "Asia/Tokyo", "ny": "America/New_York"}


@stores
def test_three_tickers_through_100_ticks_enqueue_each_tick_exactly_once(
    containers: list[Container],
) -> None:
    add(containers[0], SCHEDULES, T0)
    feed_views(containers[0])
    clock = {"now": T0}
    sessions: list[ViewStore] = [c.backend.open_views() for c in containers]
    tickers = [
        ScheduleTicker(s, c.ledger, clock=lambda: clock["now"], actor=f"ticker-{i}")
        for i, (s, c) in enumerate(zip(sessions, containers, strict=True))
    ]

    async def rounds() -> None:
        for minute in range(1, 101):
            # every third minute a second round at :5x fires the next tick ahead (the
            # default lead is 10 s), as a job scheduled for it
            seconds = [minute % 20] + ([50 + minute % 10] if minute % 3 == 0 else [])
            for second in seconds:
                clock["now"] = T0.replace(second=second) + timedelta(minutes=minute)
                async with anyio.create_task_group() as group:
                    for ticker in tickers:
                        group.start_soon(ticker.round)
            if minute % 10 == 0:
                await anyio.to_thread.run_sync(feed_views, containers[minute % 3])

    try:
        anyio.run(rounds)
    finally:
        for session in sessions:
            session.close()
    expected = [T0.replace(second=0) + timedelta(minutes=m) for m in range(1, 101)]
    for name in SCHEDULES:
        events = tick_events(containers[1], name)
        ticks = [e.tick for e in events]
        assert ticks == expected, name  # each minute once, in order, none missing
        ahead = [e.tick for e in events if e.timestamp < e.tick]
        assert ahead == expected[3::3], name  # ticks 4, 7, ... 100 fired ahead
        for tick in ticks:
            job = containers[2].ledger.get_job(
                idempotent_job_id("schedules", tick_key(name, tick))
            )
            assert job.payload == {"schedule": name}
            if tick in ahead:  # visible as scheduled for its tick until released
                assert (job.status, job.not_before) == (Status.SCHEDULED, tick)
    assert sum(t.enqueued for t in tickers) == 100 * len(SCHEDULES)
    feed_views(containers[0])
    store = containers[0].backend.open_views()
    try:
        jobs = JobStatusQueries(store).find(queue="reports", limit=1000)
        rows = {r.name: r for r in ScheduleQueries(store).all()}
    finally:
        store.close()
    assert len(jobs) == len({j.job_id for j in jobs}) == 100 * len(SCHEDULES)
    assert {r.ticks for r in rows.values()} == {100}
    assert Counter(r.last_fired_by for r in rows.values()) <= Counter(
        {f"ticker-{i}": len(SCHEDULES) for i in range(3)}
    )


KILLED_TICKER = """
import sys
from datetime import datetime
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from ledger.schedule import schedule_id
from ledger.schedule_book import ScheduleBook
from pathlib import Path
settings = Settings(ledger_data_dir=Path(sys.argv[1]), database_url=sys.argv[2] or None)
container = build(settings)
book = ScheduleBook(container.ledger)
now = datetime.fromisoformat(sys.argv[3])
names = sys.argv[4].split(",")
print("ready", flush=True)
for i in range(0, len(names), 5):
    book.fire_due([schedule_id(n) for n in names[i:i + 5]], now, "doomed")
print("done", flush=True)
"""


@stores
def test_a_ticker_killed_mid_tick_leaves_each_tick_once_or_not_at_all(
    containers: list[Container], settings: Settings,
) -> None:
    names = {f"s{i:03d}": "UTC" for i in range(300)}
    add(containers[0], names, T0)
    now = T0 + timedelta(minutes=1, seconds=1)
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_TICKER, str(settings.ledger_data_dir),
         settings.database_url or "", now.isoformat(), ",".join(names)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    book = ScheduleBook(containers[1].ledger)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not book.get("s010").last_tick:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    fired_before = sum(1 for n in names if tick_events(containers[1], n))
    assert 0 < fired_before < len(names), "kill the ticker while it is firing"
    book.fire_due([schedule_id(n) for n in names], now, "survivor")
    tick = T0.replace(second=0) + timedelta(minutes=1)
    for name in names:
        assert [e.tick for e in tick_events(containers[2], name)] == [tick], name
        containers[2].ledger.get_job(idempotent_job_id("schedules", tick_key(name, tick)))


@stores
def test_a_paused_schedule_fires_nothing_until_resumed(containers: list[Container]) -> None:
    add(containers[0], {"p": "UTC"}, T0)
    feed_views(containers[0])
    book = ScheduleBook(containers[0].ledger)
    book.pause("p", "cli:ops", "maintenance", T0 + timedelta(seconds=5))
    store = containers[1].backend.open_views()
    clock = {"now": T0 + timedelta(minutes=3)}
    ticker = ScheduleTicker(store, containers[1].ledger, clock=lambda: clock["now"], actor="t")
    try:
        anyio.run(ticker.round)
        assert tick_events(containers[0], "p") == []
        book.resume("p", "cli:ops", None, clock["now"])
        feed_views(containers[0])
        clock["now"] += timedelta(minutes=1)
        anyio.run(ticker.round)
    finally:
        store.close()
    fired = tick_events(containers[0], "p")
    assert [e.tick for e in fired] == [T0.replace(second=0) + timedelta(minutes=4)]


@stores
def test_one_ticker_fires_at_a_time_and_another_takes_over(containers: list[Container]) -> None:
    add(containers[0], {"lock": "UTC"}, T0)
    feed_views(containers[0])
    sessions = [c.backend.open_views() for c in containers[:2]]
    clock = {"now": T0 + timedelta(minutes=1, seconds=1)}
    first, second = (
        ScheduleTicker(s, c.ledger, clock=lambda: clock["now"], actor=f"t{i}", interval=0.05)
        for i, (s, c) in enumerate(zip(sessions, containers, strict=False))
    )

    async def main() -> None:
        async with anyio.create_task_group() as group:
            stop_first = anyio.CancelScope()

            async def run_first() -> None:
                with stop_first:
                    await first()

            group.start_soon(run_first)
            with anyio.fail_after(10):
                while not first.holding:
                    await anyio.sleep(0.01)
            group.start_soon(second)
            await anyio.sleep(0.5)
            assert (first.holding, second.holding, first.enqueued) == (True, False, 1)
            stop_first.cancel()  # its session's lock is released on the way out
            clock["now"] += timedelta(minutes=1)
            with anyio.fail_after(10):
                while second.enqueued < 1:
                    await anyio.sleep(0.01)
            assert (first.holding, second.holding) == (False, True)
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        for session in sessions:
            session.close()
    assert [e.actor for e in tick_events(containers[0], "lock")] == ["t0", "t1"]


@stores
def test_pausing_cancels_the_tick_fired_ahead_in_the_same_transaction(
    containers: list[Container],
) -> None:
    add(containers[0], {"early": "UTC"}, T0)
    ahead = ScheduleBook(containers[0].ledger, timedelta(seconds=10))
    [job_id] = ahead.fire_due([schedule_id("early")], T0 + timedelta(seconds=22), "t")
    assert containers[1].ledger.get_job(job_id).status is Status.SCHEDULED
    pause_at = T0 + timedelta(seconds=25)  # 5 s before the tick
    ScheduleBook(containers[1].ledger).pause("early", "cli:op", "freeze", pause_at)
    job = containers[2].ledger.get_job(job_id)
    tick = T0.replace(second=0) + timedelta(minutes=1)
    assert (job.status, job.not_before) == (Status.CANCELLED, tick)
    assert [type(e).__name__ for e in tick_events(containers[2], "early")] == ["TickEnqueued"]
    paused = containers[2].ledger.events.get(schedule_id("early"))
    assert [type(e).__name__ for e in paused][-2:] == ["TickEnqueued", "Paused"]
