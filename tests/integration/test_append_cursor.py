"""The append keeps its cursor with its pooled connection (issue 19, ADR 187): psycopg
chooses the parameters' array dumpers once per connection, not once per enqueue, and the
statement is rendered once; an
append that failed leaves the kept cursor usable; a closed connection's cursor is
replaced."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql
from psycopg.types.array import ListBinaryDumper, ListDumper

from adapters.postgres.append_cursor import kept_cursor
from adapters.postgres.backend import postgres_env
from adapters.postgres.event_recorder import LedgerEventRecorder
from adapters.service.bootstrap import utc_now
from ledger.application import JobLedger
from ledger.commands import EnqueueJob

pytestmark = pytest.mark.postgres


def count_upgrades(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    for cls in (ListDumper, ListBinaryDumper):
        original = cls.upgrade

        def upgrade(self: Any, *args: Any, _original: Any = original) -> Any:
            calls[0] += 1
            return _original(self, *args)

        monkeypatch.setattr(cls, "upgrade", upgrade)
    return calls


def test_one_job_enqueues_choose_their_array_dumpers_once_per_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = JobLedger({**postgres_env(postgres_url), "POSTGRES_POOL_SIZE": "2"})
    try:
        ledger.execute(EnqueueJob(customer_id="warm-up"), utc_now())
        calls = count_upgrades(monkeypatch)
        jobs = [ledger.execute(EnqueueJob(customer_id="c", payload={"n": n}), utc_now()).job_id
                for n in range(30)]  # fmt: skip
        assert calls[0] <= 2 * 4  # four arrays per connection at most; 120 with a new cursor each
        assert [ledger.get_job(j).payload for j in jobs] == [{"n": n} for n in range(30)]
    finally:
        ledger.close()


def test_one_job_enqueues_render_their_statement_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = JobLedger({**postgres_env(postgres_url), "POSTGRES_POOL_SIZE": "2"})
    try:
        ledger.execute(EnqueueJob(customer_id="warm-up"), utc_now())
        notifier = getattr(ledger.recorder, "notifier")  # noqa: B009
        deadline = time.monotonic() + 10  # its NOTIFY rendered too (on its own connection)
        while notifier.sent == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        calls = [0]
        original = sql.Composed.as_bytes

        def as_bytes(self: sql.Composed, *args: Any) -> bytes:
            calls[0] += 1
            return original(self, *args)

        monkeypatch.setattr(sql.Composed, "as_bytes", as_bytes)
        for n in range(30):
            ledger.execute(EnqueueJob(customer_id="c", payload={"n": n}), utc_now())
        assert calls[0] == 0  # rendered by the warm-up; 30 when psycopg rendered each
    finally:
        ledger.close()


def test_a_failed_append_leaves_the_kept_cursor_usable(postgres_url: str) -> None:
    ledger = JobLedger({**postgres_env(postgres_url), "POSTGRES_POOL_SIZE": "1"})
    try:
        recorder = ledger.recorder
        assert isinstance(recorder, LedgerEventRecorder)
        job = ledger.execute(EnqueueJob(customer_id="c"), utc_now()).job_id
        with pytest.raises(IntegrityError):  # version 1 of that job exists
            recorder.insert_rows(([job], [1], ["tests:Event"], [b"{}"]))
        again = ledger.execute(EnqueueJob(customer_id="c"), utc_now()).job_id
        assert ledger.get_job(again).id == again
    finally:
        ledger.close()


def test_a_closed_connection_gets_a_new_cursor(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        first = kept_cursor(conn, b"SELECT 1")
        assert kept_cursor(conn, b"SELECT 1") is first
        first.close()
        assert kept_cursor(conn, b"SELECT 1") is not first
