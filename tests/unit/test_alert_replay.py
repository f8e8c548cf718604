"""The alert-grouping what-if on hand-made dead letters: posts and lateness per setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from projections import replay_events as ev
from projections.alert_replay import AlertReplay
from projections.replay_events import ReplayEvent

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def dead_letter(n: int, second: float) -> ReplayEvent:
    at = T0 + timedelta(seconds=second)
    body = ev.DeadLettered(timestamp=ev.Stamp(at), attempt=3, attempts_used=3)
    return ReplayEvent(n, str(UUID(int=n)), 9, body, at)


def alert_sent(n: int, second: float, delivery: str) -> ReplayEvent:
    at = T0 + timedelta(seconds=second)
    body = ev.AlertSent(timestamp=ev.Stamp(at), dead_letter_version=9, delivery_id=delivery)
    return ReplayEvent(100 + n, str(UUID(int=n)), 10, body, at)


def replay(wait: float, log: list[ReplayEvent], threshold: int = 1) -> AlertReplay:
    sim = AlertReplay(timedelta(seconds=wait), threshold, timedelta(seconds=1), T0)
    sim.feed(log)
    sim.finish(T0 + timedelta(hours=1))
    return sim


LOG = [dead_letter(1, 0.5), dead_letter(2, 10.5), alert_sent(1, 30.2, "a"),
       alert_sent(2, 30.2, "a"), dead_letter(3, 100.5), alert_sent(3, 130.2, "b")]


def test_a_longer_wait_makes_fewer_later_posts() -> None:
    short = replay(5, LOG).report()
    assert (short.posts, short.dead_letters) == (3, 3)
    assert short.latency.max == 5.5
    longer = replay(60, LOG).report()
    assert longer.posts == 2  # 1 and 2 together at 61 s, 3 alone
    assert (longer.latency.p50, longer.latency.max) == (60.5, 60.5)
    assert (longer.really_posts, longer.really_alerted) == (2, 3)
    assert longer.really_latency.max == 29.7


def test_a_threshold_holds_posts_until_enough_wait() -> None:
    held = replay(0, LOG, threshold=2).report()
    assert held.posts == 1  # 1 and 2 at 11 s; 3 alone never reaches the threshold
    assert held.latency.count == 2
