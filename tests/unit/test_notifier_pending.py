"""A poke that finds a prompt send pending returns without the notifier's lock (ADR 212),
and every poke is still followed by a send that starts after it."""

from __future__ import annotations

import threading
import time
from typing import Any

from adapters.postgres.notifier import Notifier
from tests.unit.test_notifier import wait_for


class CountedLock:
    """A lock that counts its acquisitions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        self.taken += 1

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()


def test_pokes_while_a_send_is_pending_take_no_lock() -> None:
    release = threading.Event()
    sends: list[float] = []

    def send() -> None:
        release.wait(5)
        sends.append(time.monotonic())

    notifier = Notifier(send, idle_seconds=1.0, gap_seconds=0.05)
    notifier.poke()  # the thread starts and sends (held in send)
    wait_for(lambda: not notifier._wanted.is_set())  # it took the poke
    notifier.poke()  # one send pending, prompt
    lock = CountedLock()
    notifier._guard = lock  # type: ignore[assignment]
    for _ in range(100):
        notifier.poke()
    assert lock.taken == 0
    last = time.monotonic()
    release.set()
    wait_for(lambda: len(sends) == 2)
    assert sends[-1] >= last  # the pending send came after the last poke
    time.sleep(0.2)
    assert len(sends) == 2  # and the hundred pokes cost no send of their own


def test_a_poke_after_the_pending_send_started_asks_for_another() -> None:
    started, release = threading.Event(), threading.Event()
    sends: list[float] = []

    def send() -> None:
        started.set()
        release.wait(5)
        sends.append(time.monotonic())

    notifier = Notifier(send, idle_seconds=1.0, gap_seconds=0)
    notifier.poke()
    assert started.wait(5)  # the send is under way: nothing is pending
    poked = time.monotonic()
    notifier.poke()  # must ask for one more send, after this one
    release.set()
    wait_for(lambda: len(sends) == 2)
    assert sends[1] >= poked
