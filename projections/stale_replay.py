"""What-if for the stale rule: the pure rule (:mod:`ledger.policies.stale`) run at
simulated monitor ticks over recorded claims, heartbeats and ends (issue 16).

Fed decoded events page by page in log order (:meth:`StaleReplay.feed`); nothing is
read or written here. Each attempt is a session: opened by its claim (or the first
report seen after the replay's start), kept alive by its heartbeats, ended by its
completion or failure. Reports the ledger refused because the real monitor had already
declared the attempt stale still count as the worker's: a refused heartbeat shows the
worker was alive, a refused completion that the attempt would have finished. The
recorded ``StaleDetected`` events are what really happened; they do not end a session,
so a setting that would not have flagged an attempt is judged on what its worker did
next.

The simulated monitor ticks at ``start + k * interval`` and flags at a tick ``t`` every
open, unflagged session silent for longer than the threshold (``is_stale(last, t,
threshold)``). A tick sees the events recorded before it, not those at its own instant.
Only ticks that can flag something are visited (a heap of silence deadlines), so a long
range with few sessions costs little.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ledger.policies.stale import is_stale
from projections import replay_events as ev
from projections.replay_events import ReplayEvent

SAMPLE = 20
"""Job ids listed per category in a report."""

NEVER = datetime.max.replace(tzinfo=UTC)
_ALIVE = (ev.HeartbeatRecorded, ev.Claimed)
"""A worker's signs of life (a tuple built once: ``A | B`` in the loop builds a union)."""

Attempt = tuple[str, int]
"""(job id, attempt number)."""


@dataclass(slots=True)
class _Session:
    last: datetime
    """The worker's last sign of life: its claim or heartbeat (refused ones too)."""
    open: bool = True
    flagged_at: datetime | None = None
    completed: bool = False


@dataclass(frozen=True, slots=True)
class Flag:
    """An attempt declared stale at ``at``, silent since ``last_heartbeat_at``."""

    at: datetime
    last_heartbeat_at: datetime

    @property
    def recovery(self) -> timedelta:
        return self.at - self.last_heartbeat_at


@dataclass(frozen=True, slots=True)
class Recovery:
    """A distribution of durations in seconds (flag time minus last heartbeat)."""

    count: int
    p50: float | None
    p90: float | None
    max: float | None

    @classmethod
    def of(cls, durations: Iterable[timedelta]) -> Recovery:
        seconds = sorted(d.total_seconds() for d in durations)
        if not seconds:
            return cls(0, None, None, None)

        def rank(q: float) -> float:
            return seconds[min(len(seconds) - 1, int(q * len(seconds)))]

        return cls(len(seconds), rank(0.5), rank(0.9), seconds[-1])


@dataclass(frozen=True, slots=True)
class StaleReplayReport:
    """A setting's flags against the recorded ones (counts are attempts)."""

    threshold_seconds: float
    interval_seconds: float
    start: datetime
    until: datetime | None
    events: int
    would_flag: int
    would_flag_jobs: int
    false_positives: int
    """Flagged by the setting, and the same attempt later completed."""
    really_flagged: int
    really_false_positives: int
    flagged_not_really: int
    really_flagged_not_would: int
    recovery: Recovery
    really_recovery: Recovery
    samples: dict[str, list[str]]


@dataclass
class StaleReplay:
    """The simulated monitor's state; feed it pages, then :meth:`report`."""

    threshold: timedelta
    interval: timedelta
    start: datetime
    """The first tick; events before it are not replayed."""
    events: int = 0
    until: datetime | None = None
    flags: dict[Attempt, Flag] = field(default_factory=dict)
    real: dict[Attempt, Flag] = field(default_factory=dict)
    completed: set[Attempt] = field(default_factory=set)
    """Attempts that completed (of those flagged by either)."""
    _sessions: dict[Attempt, _Session] = field(default_factory=dict)
    _deadlines: list[tuple[datetime, Attempt]] = field(default_factory=list)
    _wake: datetime = field(default=NEVER)
    """The next tick that can flag a session (the first after the earliest deadline)."""

    def __post_init__(self) -> None:
        if self.threshold <= timedelta(0) or self.interval <= timedelta(0):
            raise ValueError("the threshold and the interval must be positive")

    def feed(self, page: Iterable[ReplayEvent]) -> None:
        """Replay a page of decoded events (in log order)."""
        for event in page:
            at = event.at
            if at < self.start:
                continue
            if self._wake <= at:
                self._tick_until(at)
            self._apply(event, at)
            self.events += 1
            self.until = at

    def _apply(self, event: ReplayEvent, at: datetime) -> None:
        body = event.body
        if isinstance(body, _ALIVE):  # nearly every event
            self._alive((event.originator_id, body.attempt), at)
        elif isinstance(body, ev.Completed | ev.Failed):
            self._end((event.originator_id, body.attempt), isinstance(body, ev.Completed))
        elif isinstance(body, ev.ReportRefused):
            key = (event.originator_id, body.attempt)
            if body.report == "heartbeat":
                self._alive(key, at)
            else:
                self._end(key, body.report == "complete")
        elif isinstance(body, ev.StaleDetected):
            key = (event.originator_id, body.attempt)
            self.real[key] = Flag(at, body.last_heartbeat_at.at)
            if self._sessions.get(key) is None:  # opened before the start: it ended here
                self._sessions[key] = _Session(body.last_heartbeat_at.at, open=False)
        elif isinstance(body, ev.DeadLettered) and body.source != "ledger":
            self._end((event.originator_id, body.attempt), False)

    def _alive(self, key: Attempt, at: datetime) -> None:
        session = self._sessions.get(key)
        if session is None:
            self._sessions[key] = _Session(at)
            heapq.heappush(self._deadlines, (at + self.threshold, key))
            if self._deadlines[0][1] is key:
                self._wake = self._first_tick_after(at + self.threshold)
        elif session.open:
            session.last = at

    def _end(self, key: Attempt, completed: bool) -> None:
        session = self._sessions.get(key)
        if session is None or (session.flagged_at is None and key not in self.real):
            self._sessions.pop(key, None)  # nothing more to learn about it
            return
        if completed:
            self.completed.add(key)
        session.open = False
        session.completed = completed

    def _tick_until(self, at: datetime) -> None:
        """Run every tick at or before ``at`` that can flag a session."""
        deadlines = self._deadlines
        while deadlines:
            deadline, key = deadlines[0]
            tick = self._first_tick_after(deadline)
            if tick > at:
                self._wake = tick
                return
            heapq.heappop(deadlines)
            session = self._sessions.get(key)
            if session is None or not session.open or session.flagged_at is not None:
                continue
            if is_stale(session.last, tick, self.threshold):
                session.flagged_at = tick
                self.flags[key] = Flag(tick, session.last)
            else:  # it heartbeated since: watch its new deadline
                heapq.heappush(deadlines, (session.last + self.threshold, key))
        self._wake = NEVER

    def _first_tick_after(self, moment: datetime) -> datetime:
        if moment < self.start:
            return self.start
        return self.start + ((moment - self.start) // self.interval + 1) * self.interval

    def finish(self, until: datetime) -> None:
        """Run the ticks up to ``until`` (the end of the replayed range)."""
        self._tick_until(until)
        self.until = max(self.until or until, until)

    def report(self) -> StaleReplayReport:
        flags, real = self.flags, self.real
        false = [k for k in flags if k in self.completed]
        only_ours = [k for k in flags if k not in real]
        only_real = [k for k in real if k not in flags]
        return StaleReplayReport(
            threshold_seconds=self.threshold.total_seconds(),
            interval_seconds=self.interval.total_seconds(),
            start=self.start, until=self.until, events=self.events,
            would_flag=len(flags), would_flag_jobs=len({k[0] for k in flags}),
            false_positives=len(false), really_flagged=len(real),
            really_false_positives=sum(1 for k in real if k in self.completed),
            flagged_not_really=len(only_ours), really_flagged_not_would=len(only_real),
            recovery=Recovery.of(f.recovery for f in flags.values()),
            really_recovery=Recovery.of(f.recovery for f in real.values()),
            samples={
                "false_positives": _sample(false), "flagged_not_really": _sample(only_ours),
                "really_flagged_not_would": _sample(only_real),
            },
        )


def _sample(keys: list[Attempt]) -> list[str]:
    return [f"{job}#{attempt}" for job, attempt in keys[:SAMPLE]]
