"""The notifier waits a gap after each NOTIFY (ADR 188): pokes from appends one after
another coalesce into one send per gap, and the last poke is still followed by a send."""

from __future__ import annotations

import time

from adapters.postgres.notifier import Notifier
from tests.unit.test_notifier import wait_for


def test_pokes_one_after_another_send_once_per_gap() -> None:
    pokes = [0]
    seen: list[int] = []
    notifier = Notifier(lambda: seen.append(pokes[0]), idle_seconds=0.5, gap_seconds=0.2)
    for _ in range(40):  # appends one after another, each poking after its commit
        pokes[0] += 1
        notifier.poke()
        time.sleep(0.002)
    wait_for(lambda: seen and seen[-1] == 40)  # the last poke is followed by a send
    assert len(seen) <= 3  # about 40 without the gap: one send per poke
