"""What-if for alert grouping: the pure grouping rule (:func:`ledger.policies.alerts.due_groups`)
run at simulated ticks of the dead-letter monitor over the recorded dead letters (issue 16).

Fed decoded events page by page in log order; nothing is read or written here. Every
``DeadLettered`` event is a notice that waits for its alert; at each tick ``start + k *
tick`` the rule says which groups are posted, and each group is one post (split into
messages of at most 45 jobs as the rule does). Deliveries are assumed to succeed at the
tick. The recorded ``AlertSent`` events (one delivery id per post) are what really
happened. Only ticks at which the rule can post are visited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from ledger.policies.alerts import DeadLetterNotice, due_groups
from projections import replay_events as ev
from projections.replay_events import ReplayEvent
from projections.stale_replay import Recovery


@dataclass(frozen=True, slots=True)
class AlertReplayReport:
    """How many posts a grouping setting makes and how late, against the recorded ones."""

    group_wait_seconds: float
    threshold: int
    tick_seconds: float
    events: int
    dead_letters: int
    posts: int
    messages: int
    latency: Recovery
    """Seconds from a dead letter to the post that carries it."""
    really_posts: int
    really_alerted: int
    really_latency: Recovery


@dataclass
class AlertReplay:
    """The simulated alert sender's state; feed it pages, then :meth:`report`."""

    group_wait: timedelta
    threshold: int
    tick: timedelta
    start: datetime
    events: int = 0
    dead_letters: int = 0
    posts: int = 0
    messages: int = 0
    delays: list[timedelta] = field(default_factory=list)
    real_delays: list[timedelta] = field(default_factory=list)
    real_posts: set[str] = field(default_factory=set)
    _pending: list[DeadLetterNotice] = field(default_factory=list)
    _dead_lettered_at: dict[tuple[str, int], datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tick <= timedelta(0) or self.group_wait < timedelta(0) or self.threshold < 1:
            raise ValueError("the tick must be positive, the wait not negative, threshold >= 1")

    def feed(self, page: Iterable[ReplayEvent]) -> None:
        for event in page:
            at = event.at
            if at < self.start:
                continue
            if self._pending:
                self._tick_until(at)
            body = event.body
            if isinstance(body, ev.DeadLettered):
                self._dead_letter(event, body, at)
            elif isinstance(body, ev.AlertSent):
                self.real_posts.add(body.delivery_id)
                since = self._dead_lettered_at.pop((event.originator_id, body.dead_letter_version),
                                                   None)
                if since is not None:
                    self.real_delays.append(at - since)
            self.events += 1

    def _dead_letter(self, event: ReplayEvent, body: ev.DeadLettered, at: datetime) -> None:
        self.dead_letters += 1
        self._dead_lettered_at[(event.originator_id, event.originator_version)] = at
        self._pending.append(DeadLetterNotice(
            job_id=UUID(event.originator_id), dead_letter_version=event.originator_version,
            customer_id="", attempts=body.attempts_used, message_id=body.message_id,
            last_error=body.last_error, dead_lettered_at=at,
        ))

    def _tick_until(self, at: datetime) -> None:
        """Post at every tick at or before ``at`` at which the rule posts."""
        while len(self._pending) >= self.threshold:
            oldest = min(n.dead_lettered_at for n in self._pending)
            tick = self._first_tick_from(oldest + self.group_wait)
            if tick > at:
                return
            groups = due_groups(
                self._pending, tick, threshold=self.threshold, group_wait=self.group_wait
            )
            self.posts += 1
            self.messages += len(groups)
            for group in groups:
                self.delays += [tick - n.dead_lettered_at for n in group]
            self._pending = []

    def _first_tick_from(self, moment: datetime) -> datetime:
        if moment <= self.start:
            return self.start
        steps = -((self.start - moment) // self.tick)  # ceiling
        return self.start + steps * self.tick

    def finish(self, until: datetime) -> None:
        self._tick_until(until)

    def report(self) -> AlertReplayReport:
        return AlertReplayReport(
            group_wait_seconds=self.group_wait.total_seconds(), threshold=self.threshold,
            tick_seconds=self.tick.total_seconds(), events=self.events,
            dead_letters=self.dead_letters, posts=self.posts, messages=self.messages,
            latency=Recovery.of(self.delays),
            really_posts=len(self.real_posts), really_alerted=len(self.real_delays),
            really_latency=Recovery.of(self.real_delays),
        )
