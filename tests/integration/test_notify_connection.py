"""The log's NOTIFY on the notifier's own connection (ADR 206): sends take nothing from the
application's pool, listeners are still woken, the connection is let go when the
notifier's thread idles out and closed with the application, and a broken connection is
replaced at the next send."""

from __future__ import annotations

import time

import psycopg
import pytest

from adapters.postgres.backend import postgres_env
from adapters.postgres.event_recorder import LedgerEventRecorder
from ledger.application import JobLedger
from tests.integration.test_append_notify import event, recorder_of
from tests.support.http import wait_for

pytestmark = pytest.mark.postgres


def pool_requests(recorder: LedgerEventRecorder) -> int:
    return int(recorder.datastore.pool.get_stats().get("requests_num", 0))


def notifier_backends(url: str) -> int:
    """Sessions of this process's notifier: the last statement it ran was the NOTIFY."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'NOTIFY %%' "
            "AND pid <> pg_backend_pid() AND datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_sends_take_no_connection_from_the_pool_and_still_wake_listeners(
    postgres_url: str,
) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = recorder_of(ledger)
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f'LISTEN "{recorder.channel_name}"')
            recorder.insert_events([event()])  # the pool's first checkout, and the warm-up
            wait_for(lambda: recorder.notifier.sent >= 1)
            before = pool_requests(recorder)
            for _ in range(20):
                recorder.insert_events([event()])
                wait_for(lambda: not recorder.notifier._wanted.is_set())
            wait_for(lambda: recorder.notifier.sent >= 2)
            assert list(listener.notifies(timeout=5.0, stop_after=1))
        assert pool_requests(recorder) - before == 20  # the appends' checkouts alone
        assert recorder.notify_connection.connects == 1
    finally:
        ledger.close()


def test_the_connection_is_let_go_when_idle_and_closed_with_the_application(
    postgres_url: str,
) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    recorder = recorder_of(ledger)
    recorder.notifier._idle = 0.2
    try:
        recorder.insert_events([event()])
        wait_for(lambda: recorder.notifier.sent >= 1)
        assert notifier_backends(postgres_url) == 1
        wait_for(lambda: not recorder.notifier._running)  # idle: its thread ended
        wait_for(lambda: notifier_backends(postgres_url) == 0)
        recorder.notifier._idle = 30.0
        recorder.insert_events([event()])  # a new thread connects again
        wait_for(lambda: recorder.notifier.sent >= 2)
        assert recorder.notify_connection.connects == 2
        assert notifier_backends(postgres_url) == 1
    finally:
        ledger.close()
    wait_for(lambda: notifier_backends(postgres_url) == 0)  # closed with it, not idle


def test_a_broken_connection_is_replaced_at_the_next_send(postgres_url: str) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = recorder_of(ledger)
        recorder.insert_events([event()])
        wait_for(lambda: recorder.notifier.sent >= 1)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'NOTIFY %%' AND pid <> pg_backend_pid()"
            )
        sent = recorder.notifier.sent
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f'LISTEN "{recorder.channel_name}"')
            recorder.insert_events([event()])  # this send fails on the dead socket: logged
            wait_for(lambda: not recorder.notifier._wanted.is_set())
            time.sleep(0.05)
            recorder.insert_events([event()])  # and this one connects again
            wait_for(lambda: recorder.notifier.sent > sent)
            assert list(listener.notifies(timeout=5.0, stop_after=1))
        assert recorder.notify_connection.connects >= 2
    finally:
        ledger.close()
