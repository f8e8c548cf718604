"""The log's NOTIFY sent off the append's path (ADR 165): a listener is woken after every
burst of appends, from many threads and from a forked child process, with at most one
NOTIFY per append, and the append's own session sends none."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.postgres.backend import postgres_env
from adapters.postgres.event_recorder import LedgerEventRecorder
from adapters.postgres.notifier import Notifier
from ledger.application import JobLedger

pytestmark = pytest.mark.postgres


def event() -> StoredEvent:
    return StoredEvent(originator_id=uuid4(), originator_version=1, topic="t:E", state=b"{}")


def recorder_of(ledger: JobLedger) -> LedgerEventRecorder:
    assert isinstance(ledger.recorder, LedgerEventRecorder)
    return ledger.recorder


def test_a_burst_from_many_threads_wakes_the_listener_and_coalesces(postgres_url: str) -> None:
    ledger = JobLedger({**postgres_env(postgres_url), "POSTGRES_POOL_SIZE": "9"})
    try:
        recorder = recorder_of(ledger)
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f'LISTEN "{recorder.channel_name}"')

            def append_25() -> None:
                for _ in range(25):
                    recorder.insert_events([event()])

            threads = [threading.Thread(target=append_25) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            received = list(listener.notifies(timeout=5.0, stop_after=1))
            assert received, "no NOTIFY after 200 appends"
            received += list(listener.notifies(timeout=1.0))
        assert 1 <= len(received) <= 200
        assert 1 <= recorder.notifier.sent <= 200
    finally:
        ledger.close()


def _poke_and_wait(notifier: Notifier) -> None:  # pragma: no cover - runs in the child
    notifier.poke()
    deadline = time.monotonic() + 10
    while notifier.sent == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(0 if notifier.sent == 2 else 1)


def test_a_forked_child_starts_its_own_thread(postgres_url: str) -> None:
    """``ledger serve --processes N`` forks after the parent appended: the child inherits
    the notifier but not its thread."""
    channel = f"fork_{uuid4().hex[:8]}"

    def send() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'NOTIFY "{channel}"')

    notifier = Notifier(send, idle_seconds=30)
    notifier.poke()
    deadline = time.monotonic() + 10
    while notifier.sent == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with psycopg.connect(postgres_url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{channel}"')
        child = multiprocessing.get_context("fork").Process(
            target=_poke_and_wait, args=(notifier,)
        )
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert list(listener.notifies(timeout=5.0, stop_after=1))


def test_the_append_sends_no_notify_itself(postgres_url: str) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = recorder_of(ledger)
        recorder.notifier.poke = lambda within=0.0: None  # type: ignore[method-assign]
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f'LISTEN "{recorder.channel_name}"')
            recorder.insert_events([event()])
            assert list(listener.notifies(timeout=0.5)) == []
    finally:
        ledger.close()
