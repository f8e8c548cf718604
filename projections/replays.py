"""Run a what-if replay over the log: read it in pages from the cut at ``start`` up to the
head as it is when the replay begins (or a given end), the next page read on a thread
while the current one is decoded and fed to the pure replay
(:mod:`projections.stale_replay`, :mod:`projections.alert_replay`). Only reads: the
log's head is the same after a replay as before it.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta
from typing import Protocol

from ledger.errors import LedgerError
from projections.alert_replay import AlertReplay, AlertReplayReport
from projections.asof import SKEW, InvalidMoment, parse_moment, position_at
from projections.pages import pages, prefetched
from projections.replay_events import NotReplayable, ReplayEvent, decode_for_replay
from projections.stale_replay import StaleReplay, StaleReplayReport
from projections.store import ViewStore

PAGE = 5_000
"""Events read per page."""
MAX_RANGE = timedelta(days=3660)
"""The longest range a replay accepts."""


class InvalidReplay(LedgerError):
    """A replay needs a positive threshold and interval within ten years."""

    code = "invalid_replay"


class LogNotReadable(LedgerError):
    """The replay stopped at an event it could not read."""

    code = "log_not_readable"


class Replay(Protocol):
    def feed(self, page: list[ReplayEvent]) -> None: ...

    def finish(self, until: datetime) -> None: ...


def replay_log(
    store: ViewStore, replay: Replay, start: datetime, until: datetime | None = None
) -> int:
    """Feed ``replay`` the events from ``start`` to ``until`` (default: the head now);
    return how many events were read."""
    head = store.head()
    if head == 0:
        return 0
    upto = head if until is None else position_at(store, until, head)
    after = position_at(store, start - SKEW, head)  # stamps run behind commits (ADR 90)
    read = 0
    last: datetime | None = None
    reading = (prefetched if after < upto else pages)(store, after, PAGE, upto)
    with closing(reading):  # stops the reading thread whatever happens here
        for page in reading:
            try:
                events = decode_for_replay(page)
            except NotReplayable as error:
                raise LogNotReadable(str(error)) from None
            replay.feed(events)
            read += len(page)
            if events:
                last = events[-1].at
    end = until or last
    if end is not None:
        replay.finish(end)
    return read


def _checked(start: datetime, until: datetime | None, *positive: timedelta) -> None:
    if any(value <= timedelta(0) for value in positive):
        raise InvalidReplay("the threshold, the interval and the tick must be positive")
    if until is not None and until < start:
        raise InvalidReplay("the end of a replay is before its start")
    if any(value > MAX_RANGE for value in positive):
        raise InvalidReplay("a setting of more than ten years")


def replay_stale(
    store: ViewStore, *, threshold: timedelta, interval: timedelta, start: datetime,
    until: datetime | None = None,
) -> StaleReplayReport:
    """The stale rule with ``threshold`` at ticks every ``interval`` from ``start``."""
    _checked(start, until, threshold, interval)
    replay = StaleReplay(threshold, interval, start)
    replay_log(store, replay, start, until)
    return replay.report()


def replay_alerts(
    store: ViewStore, *, group_wait: timedelta, threshold: int, start: datetime,
    tick: timedelta = timedelta(seconds=1), until: datetime | None = None,
) -> AlertReplayReport:
    """Alert grouping with ``group_wait`` and ``threshold`` at ticks every ``tick``."""
    _checked(start, until, tick, group_wait + timedelta.resolution)
    if threshold < 1:
        raise InvalidReplay("the alert threshold is at least 1")
    replay = AlertReplay(group_wait, threshold, tick, start)
    replay_log(store, replay, start, until)
    return replay.report()


__all__ = ["InvalidReplay", "LogNotReadable", "replay_alerts",
           "replay_stale"]


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> timedelta:
    """``300``, ``300s``, ``5m``, ``1.5h``, ``7d``, ``2w`` (a plain number is seconds);
    :class:`InvalidReplay` for anything else or more than ten years."""
    raw = text.strip().lower()
    unit = next((u for u in ("ms", "s", "m", "h", "d", "w") if raw.endswith(u)), "")
    number = raw[: len(raw) - len(unit)] if unit else raw
    try:
        value = float(number) if number.isascii() and len(number) <= 20 else float("nan")
    except ValueError:
        value = float("nan")
    if not value >= 0 or value * _UNITS.get(unit, 1.0) > MAX_RANGE.total_seconds():
        raise InvalidReplay(f"{text!r} is not a duration (such as 300s, 5m, 1.5h, 7d)")
    return timedelta(seconds=value * _UNITS.get(unit, 1.0))


def replay_start(since: str, now: datetime) -> datetime:
    """The first tick of a replay: ``now`` minus a duration (``7d``) or a time with a zone
    (``2026-12-01T03:00Z``)."""
    try:
        return now - parse_duration(since)
    except InvalidReplay:
        pass
    try:
        moment = parse_moment(since)
    except InvalidMoment:
        moment = None
    if moment is None or moment.time is None:
        raise InvalidReplay(f"since {since!r}: give a duration (7d) or a time with a zone")
    return moment.time


def replay_range(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime | None]:
    """A replay's first tick and its end (``None``: the last event), each as
    :func:`replay_start` reads it."""
    return replay_start(since, now), None if until is None else replay_start(until, now)
