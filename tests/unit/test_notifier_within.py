"""A poke may allow its NOTIFY to come later (ADR 203): lenient pokes share one send, a
poke that allows nothing cuts the wait short, and every poke is still followed by a send
that starts after it. Counts, not times."""

from __future__ import annotations

from adapters.postgres.notifier import Notifier
from tests.unit.test_notifier import wait_for


def test_lenient_pokes_share_one_send_which_a_strict_poke_hurries() -> None:
    pokes = [0]
    seen: list[int] = []
    notifier = Notifier(lambda: seen.append(pokes[0]), idle_seconds=1.0, gap_seconds=0)
    for _ in range(40):  # a worker's batches, each allowing the listeners' linger
        pokes[0] += 1
        notifier.poke(within=30.0)
    assert seen == []  # still within what every poke allowed: no send yet
    pokes[0] += 1
    notifier.poke()  # an append that allows no wait
    wait_for(lambda: seen == [41])  # one send, after every poke


def test_a_lenient_poke_alone_is_followed_by_a_send() -> None:
    seen: list[int] = []
    notifier = Notifier(lambda: seen.append(1), idle_seconds=1.0, gap_seconds=0)
    notifier.poke(within=0.05)
    wait_for(lambda: seen == [1])
    notifier.poke(within=0.05)
    wait_for(lambda: seen == [1, 1])
