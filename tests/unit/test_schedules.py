"""Cron schedules (ADR 130): the next tick across DST, the missed-tick policies, the
validation at add, and the firing of ticks exactly once on the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.errors import ConfigurationError, InvalidText
from ledger.job_ids import idempotent_job_id
from ledger.policies.cron import (
    InvalidSchedule,
    MissedTicks,
    latest_tick,
    next_tick,
    tick_to_fire,
)
from ledger.schedule import Schedule, ScheduleExists, ScheduleNotFound, ScheduleSpec, tick_key
from ledger.schedule_book import ScheduleBook
from ledger.status import Status


def utc(*parts: int) -> datetime:
    return datetime.fromisoformat(
        "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*parts, *[0] * (6 - len(parts)))
    ).replace(tzinfo=UTC)


def _deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def ticks(cron: str, zone: str, after: datetime, n: int) -> list[datetime]:
    out = []
    for _ in range(n):
        found = next_tick(cron, zone, after)
        assert found is not None
        out.append(found)
        after = found
    return out


def test_a_daily_tick_in_the_skipped_hour_fires_after_the_jump() -> None:
    # Paris goes from 02:00 CET to 03:00 CEST on 2026-03-29: 02:30 does not exist.
    assert ticks("30 2 * * *", "Europe/Paris", utc(2026, 3, 27, 12), 3) == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST, right after the jump
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_a_daily_tick_in_the_repeated_hour_fires_once() -> None:
    # Paris goes back from 03:00 CEST to 02:00 CET on 2026-10-25: 02:30 happens twice.
    assert ticks("30 2 * * *", "Europe/Paris", utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),  # the first 02:30 (CEST)
        utc(2026, 10, 26, 1, 30),  # the next day, 02:30 CET
    ]


def test_ticks_are_strictly_increasing_through_both_changes() -> None:
    for start in (utc(2026, 3, 28, 23), utc(2026, 10, 24, 23)):
        found = ticks("*/15 * * * *", "Europe/Paris", start, 24)
        assert found == sorted(set(found))
        assert all(b - a <= timedelta(hours=1, minutes=15) for a, b in pairwise(found))


def test_a_zone_ahead_of_utc_ticks_at_its_own_midnight() -> None:
    assert next_tick("0 0 * * *", "Asia/Tokyo", utc(2026, 1, 1, 12)) == utc(2026, 1, 1, 15)


def test_an_expression_that_never_fires_has_no_next_tick() -> None:
    assert next_tick("0 0 31 2 *", "UTC", utc(2026, 1, 1)) is None


@pytest.mark.parametrize(
    ("late", "policy", "fired"),
    [
        (timedelta(seconds=5), MissedTicks.RUN_ONCE, utc(2026, 1, 1, 0, 5)),
        (timedelta(seconds=5), MissedTicks.SKIP, utc(2026, 1, 1, 0, 5)),
        (timedelta(hours=3, minutes=2), MissedTicks.RUN_ONCE, utc(2026, 1, 1, 3, 5)),
        (timedelta(hours=3, minutes=2), MissedTicks.SKIP, None),
    ],
)
def test_missed_tick_policies(late: timedelta, policy: MissedTicks, fired: datetime | None) -> None:
    due = utc(2026, 1, 1, 0, 5)
    assert tick_to_fire(
        "*/5 * * * *", "UTC", policy, due=due, now=due + late, grace=timedelta(minutes=1)
    ) == fired


def test_the_latest_tick_of_a_year_down_is_found_from_now() -> None:
    assert latest_tick("* * * * *", "UTC", utc(2025, 1, 1), utc(2026, 1, 1, 0, 0, 30)) == utc(
        2026, 1, 1
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ScheduleSpec(name="a", cron="* * * *"), "cron"),
        (ScheduleSpec(name="a", cron="* * * * * *"), "cron"),
        (ScheduleSpec(name="a", cron="61 * * * *"), "cron"),
        (ScheduleSpec(name="a", cron="@hourly"), "cron"),
        (ScheduleSpec(name="a", cron="* * * * *", timezone="Mars/Olympus"), "timezone"),
        (ScheduleSpec(name="a", cron="* * * * *", timezone="../../etc/passwd"), "timezone"),
        (ScheduleSpec(name="a\tb", cron="* * * * *"), "name"),
        (ScheduleSpec(name="", cron="* * * * *"), "name"),
        (ScheduleSpec(name="x" * 121, cron="* * * * *"), "name"),
        (ScheduleSpec(name="a", cron="* * * * *", queue="no spaces"), "queue"),
        (ScheduleSpec(name="a", cron="* * * * *", payload="x" * 70_000), "payload"),
        (ScheduleSpec(name="a", cron="* * * * *", payload=_deep(40)), "payload"),
        (ScheduleSpec(name="a", cron="* * * * *", priority=101), "priority"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(spec: ScheduleSpec, field: str) -> None:
    ledger = JobLedger()
    with pytest.raises(InvalidSchedule) as raised:
        ScheduleBook(ledger).add(spec, "cli:me", None, utc(2026, 1, 1))
    assert raised.value.field == field
    assert raised.value.code == "invalid_schedule"
    assert ledger.recorder.max_notification_id() in (None, 0)  # nothing appended


def test_unstorable_payload_text_is_refused() -> None:
    with pytest.raises(InvalidText):
        ScheduleSpec(name="a", cron="* * * * *", payload={"k": "\x00"}).checked()


def test_two_books_fire_each_tick_once_and_the_job_has_the_ticks_key() -> None:
    ledger = JobLedger()
    first, second = ScheduleBook(ledger), ScheduleBook(ledger)
    spec = ScheduleSpec(name="report", cron="*/5 * * * *", queue="q", payload={"a": 1})
    schedule = first.add(spec, "cli:me", "nightly", utc(2026, 1, 1, 0, 0, 30))
    assert schedule.next_tick == utc(2026, 1, 1, 0, 5)
    now = utc(2026, 1, 1, 0, 5, 2)
    fired = first.fire_due([schedule.id], now, "t1") + second.fire_due([schedule.id], now, "t2")
    key = tick_key("report", utc(2026, 1, 1, 0, 5))
    assert key == "schedule:report:2026-01-01T00:05:00Z"
    assert fired == [idempotent_job_id("schedules", key)]
    job = ledger.get_job(fired[0])
    assert (job.queue, job.payload, job.idempotency_key) == ("q", {"a": 1}, key)
    stored = second.get("report")
    assert (stored.last_tick, stored.next_tick, stored.last_late) == (
        utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 0, 10), 2.0
    )


def test_run_once_catches_up_with_one_job_and_skip_with_none() -> None:
    ledger = JobLedger()
    book = ScheduleBook(ledger)
    start = utc(2026, 1, 1)
    once = book.add(ScheduleSpec(name="once", cron="*/5 * * * *"), "cli:me", None, start)
    skip = book.add(
        ScheduleSpec(name="skip", cron="*/5 * * * *", missed=MissedTicks.SKIP), "cli:me", None,
        start,
    )
    later = utc(2026, 1, 1, 3, 7)
    fired = book.fire_due([once.id, skip.id], later, "t")
    assert len(fired) == 1
    assert book.get("once").last_tick == utc(2026, 1, 1, 3, 5)
    assert book.get("skip").last_tick is None
    assert book.get("skip").next_tick == book.get("once").next_tick == utc(2026, 1, 1, 3, 10)


def test_paused_schedules_do_not_fire_and_resume_skips_the_pause() -> None:
    ledger = JobLedger()
    book = ScheduleBook(ledger)
    schedule = book.add(ScheduleSpec(name="p", cron="* * * * *"), "cli:me", None, utc(2026, 1, 1))
    book.pause("p", "cli:me", "maintenance", utc(2026, 1, 1, 0, 0, 10))
    assert book.fire_due([schedule.id], utc(2026, 1, 1, 0, 5), "t") == []
    resumed = book.resume("p", "cli:me", None, utc(2026, 1, 1, 0, 5, 30))
    assert resumed.next_tick == utc(2026, 1, 1, 0, 6)
    assert len(book.fire_due([schedule.id], utc(2026, 1, 1, 0, 6, 1), "t")) == 1


def test_a_name_is_added_once_until_removed() -> None:
    ledger = JobLedger()
    book = ScheduleBook(ledger)
    spec = ScheduleSpec(name="n", cron="* * * * *")
    book.add(spec, "cli:me", None, utc(2026, 1, 1))
    with pytest.raises(ScheduleExists):
        book.add(spec, "cli:me", None, utc(2026, 1, 1))
    book.remove("n", "cli:me", "gone", utc(2026, 1, 1, 0, 1))
    with pytest.raises(ScheduleNotFound):
        book.pause("n", "cli:me", None, utc(2026, 1, 1, 0, 2))
    again = book.add(spec, "cli:you", None, utc(2026, 1, 1, 0, 3))
    assert isinstance(again, Schedule)
    assert not again.removed


def test_a_tick_fired_ahead_enqueues_its_job_scheduled_for_the_tick_once() -> None:
    ledger = JobLedger()
    lead = timedelta(seconds=10)
    first, second = ScheduleBook(ledger, lead), ScheduleBook(ledger, lead)
    schedule = first.add(ScheduleSpec(name="a", cron="* * * * *"), "cli:me", None, utc(2026, 1, 1))
    assert first.fire_due([schedule.id], utc(2026, 1, 1, 0, 0, 49), "t1") == []  # 11 s ahead
    now = utc(2026, 1, 1, 0, 0, 52)
    fired = first.fire_due([schedule.id], now, "t1") + second.fire_due([schedule.id], now, "t2")
    assert fired == [idempotent_job_id("schedules", tick_key("a", utc(2026, 1, 1, 0, 1)))]
    job = ledger.get_job(fired[0])
    assert (job.status, job.not_before) == (Status.SCHEDULED, utc(2026, 1, 1, 0, 1))
    stored = second.get("a")
    assert (stored.last_tick, stored.next_tick, stored.last_late) == (
        utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2), 0.0
    )
    assert second.fire_due([schedule.id], utc(2026, 1, 1, 0, 1, 3), "t2") == []
    on_time = ScheduleBook(ledger).fire_due([schedule.id], utc(2026, 1, 1, 0, 2), "t3")
    assert ledger.get_job(on_time[0]).status == Status.PENDING  # no lead: enqueued pending


@pytest.mark.parametrize("control", ["pause", "remove"])
def test_pausing_or_removing_cancels_the_tick_fired_ahead(control: str) -> None:
    ledger = JobLedger()
    book = ScheduleBook(ledger, timedelta(seconds=10))
    schedule = book.add(ScheduleSpec(name="c", cron="* * * * *"), "cli:me", None, utc(2026, 1, 1))
    [job_id] = book.fire_due([schedule.id], utc(2026, 1, 1, 0, 0, 55), "t")
    getattr(book, control)("c", "cli:me", None, utc(2026, 1, 1, 0, 0, 58))
    job = ledger.get_job(job_id)
    assert job.status == Status.CANCELLED
    if control == "pause":  # resuming does not fire the cancelled tick again
        assert book.resume("c", "cli:me", None, utc(2026, 1, 1, 0, 0, 59)).next_tick == utc(
            2026, 1, 1, 0, 2
        )


def test_a_tick_whose_time_came_stands_when_the_schedule_is_paused() -> None:
    ledger = JobLedger()
    book = ScheduleBook(ledger, timedelta(seconds=10))
    schedule = book.add(ScheduleSpec(name="s", cron="* * * * *"), "cli:me", None, utc(2026, 1, 1))
    [job_id] = book.fire_due([schedule.id], utc(2026, 1, 1, 0, 0, 55), "t")
    book.pause("s", "cli:me", None, utc(2026, 1, 1, 0, 1, 1))
    assert ledger.get_job(job_id).status == Status.SCHEDULED  # released when the scheduler runs


def test_the_lead_is_a_setting_of_zero_or_more_seconds() -> None:
    assert Settings().schedule_lead_seconds == 10.0
    assert Settings.from_env({"SCHEDULE_LEAD_SECONDS": "0"}).schedule_lead_seconds == 0.0
    for bad in ("-1", "301", "1e12", "nan"):
        with pytest.raises(ConfigurationError):
            Settings.from_env({"SCHEDULE_LEAD_SECONDS": bad})
