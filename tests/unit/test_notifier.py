"""The notifier that sends the log's NOTIFY off the append's path (ADR 165): every poke is
followed by a send that starts after it, pokes during a send coalesce into one more, a
failing send does not stop it, and an idle thread ends and is started again."""

from __future__ import annotations

import threading
import time

from adapters.postgres.notifier import Notifier


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_each_poke_is_followed_by_a_send_that_starts_after_it() -> None:
    pokes_before_send: list[int] = []
    pokes = [0]
    notifier = Notifier(lambda: pokes_before_send.append(pokes[0]), idle_seconds=0.2)
    for _ in range(50):
        pokes[0] += 1
        notifier.poke()
        wait_for(lambda: pokes_before_send and pokes_before_send[-1] == pokes[0])


def test_pokes_during_a_send_coalesce_into_one_more() -> None:
    release, started = threading.Event(), threading.Event()
    sends = [0]

    def send() -> None:
        sends[0] += 1
        started.set()
        release.wait(5)

    notifier = Notifier(send, idle_seconds=0.2)
    notifier.poke()
    assert started.wait(5)
    for _ in range(100):
        notifier.poke()
    release.set()
    wait_for(lambda: sends[0] == 2)
    time.sleep(0.1)
    assert sends[0] == 2


def test_a_failing_send_is_logged_and_the_next_poke_sends_again() -> None:
    calls = [0]

    def send() -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("server gone")

    notifier = Notifier(send, idle_seconds=0.2)
    notifier.poke()
    wait_for(lambda: calls[0] == 1)
    notifier.poke()
    wait_for(lambda: notifier.sent == 1)


def test_an_idle_thread_ends_and_the_next_poke_starts_one() -> None:
    notifier = Notifier(lambda: None, idle_seconds=0.05)
    notifier.poke()
    wait_for(lambda: notifier.sent == 1)
    wait_for(lambda: not notifier._running)
    notifier.poke()
    wait_for(lambda: notifier.sent == 2)


def test_an_ending_thread_lets_go_of_what_its_sends_kept() -> None:
    released: list[int] = []
    notifier = Notifier(lambda: None, idle_seconds=0.05, on_idle=lambda: released.append(1))
    notifier.poke()
    wait_for(lambda: len(released) == 1 and not notifier._running)
    notifier.poke()
    wait_for(lambda: len(released) == 2)
    assert notifier.sent == 2
