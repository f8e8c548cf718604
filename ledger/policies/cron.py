"""When a schedule ticks: five-field cron expressions evaluated in an IANA time zone.

Pure: every function takes the instant it computes from (``croniter`` reads the clock only
when it is given no start, which never happens here; zoneinfo reads the zone database,
a file of the Python installation, not state). Times in and out are aware UTC.

A tick is a wall-clock time of the schedule's zone that matches the expression, mapped to
UTC (docs/adr/0130-schedules.md):

- a wall-clock time that does not exist (the hour skipped when clocks go forward) fires
  at the instant it maps to with the offset before the jump (02:30 on the night Paris
  goes from 02:00 to 03:00 fires at 03:30 local); two such times that land on the same
  instant as a real one fire once;
- a wall-clock time that happens twice (the hour repeated when clocks go back) fires
  once, at its first occurrence.

So the ticks of a schedule are strictly increasing UTC instants, and the next tick after
any instant is one function of (expression, zone, instant).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from ledger.errors import InvalidCommand

MAX_STEPS: Final = 10_000
"""Most candidates :func:`next_tick` looks at (a repeated hour of a minutely schedule
needs 60); beyond, the expression is treated as never firing."""
MAX_EXPRESSION_CHARS: Final = 200


class InvalidSchedule(InvalidCommand):
    """The schedule is invalid."""

    code = "invalid_schedule"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(f"{field}: {reason}")


class MissedTicks(StrEnum):
    """What a schedule does about ticks that passed while no scheduler ran."""

    RUN_ONCE = "run_once"
    """Enqueue the latest missed tick (one job however many were missed)."""
    SKIP = "skip"
    """Enqueue none of them; wait for the next tick."""


def check_expression(expression: str) -> str:
    """``expression`` normalised (single spaces), or :class:`InvalidSchedule`: exactly five
    fields (minute hour day-of-month month day-of-week), which croniter accepts."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise InvalidSchedule("cron", f"longer than {MAX_EXPRESSION_CHARS} characters")
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidSchedule(
            "cron", f"{expression!r} has {len(fields)} field(s); five are needed "
            "(minute hour day-of-month month day-of-week)"
        )
    normal = " ".join(fields)
    if not croniter.is_valid(normal):
        raise InvalidSchedule("cron", f"{expression!r} is not a valid cron expression")
    return normal


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or :class:`InvalidSchedule`."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise InvalidSchedule("timezone", f"{name!r} is not an IANA time zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule("timezone", f"{name!r} is not an IANA time zone") from None


@lru_cache(maxsize=4096)
def next_tick(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The first tick strictly after ``after`` (aware), in UTC; ``None`` if it never
    fires again (``0 0 30 2 *``). Cached: schedules of one expression ticking together
    (every hour on the hour) ask the same question, and croniter parses it anew each time."""
    tz = zone(timezone)
    local = after.astimezone(tz).replace(tzinfo=None, fold=0)
    try:
        candidates = croniter(expression, local)
        for _ in range(MAX_STEPS):
            wall: datetime = candidates.get_next(datetime)
            instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
            if instant > after:
                return instant
    except (CroniterBadDateError, CroniterBadCronError):
        return None
    return None


def latest_tick(expression: str, timezone: str, after: datetime, now: datetime) -> datetime | None:
    """The latest tick in ``(after, now]``, or ``None`` when none fell in it. Walks
    backwards from ``now``, so a schedule down for a year costs one step per candidate
    only near ``now``. It starts two hours of wall clock after ``now``, so a clock that
    went back (a repeated hour) cannot hide the ticks of its first pass."""
    tz = zone(timezone)
    local = now.astimezone(tz).replace(tzinfo=None, fold=0) + timedelta(hours=2, minutes=1)
    try:
        candidates = croniter(expression, local)
        for _ in range(MAX_STEPS):
            wall: datetime = candidates.get_prev(datetime)
            instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
            if instant <= after:
                return None
            if instant <= now:
                return instant
    except (CroniterBadDateError, CroniterBadCronError):
        return None
    return None


def tick_to_fire(
    expression: str, timezone: str, policy: MissedTicks, *, due: datetime, now: datetime,
    grace: timedelta,
) -> datetime | None:
    """Which tick a scheduler fires now for a schedule whose next tick is ``due``
    (``due <= now``, or ahead of it: then ``due``): ``due`` itself when it is at most
    ``grace`` late (a tick on time);
    else ticks were missed, and ``run_once`` fires the latest of them, ``skip`` none."""
    if now - due <= grace:
        return due
    if policy is MissedTicks.SKIP:
        return None
    latest = latest_tick(expression, timezone, due - timedelta(microseconds=1), now)
    return latest or due
