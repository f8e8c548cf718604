"""Retries after version conflicts wait a random share of a doubling window (ADR 196):
the first retry at once, then 1, 2, 4 ... ms up to 50 ms; without a pause, at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import RecordConflictError

from ledger.application import BATCH_ROUNDS, JobLedger
from ledger.backoff import Backoff
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from ledger.errors import ConcurrencyExhausted

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_windows_double_from_one_millisecond_to_fifty() -> None:
    backoff = Backoff(None)
    assert [backoff.window(t) for t in range(9)] == [
        0.0, 0.0, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.05,
    ]


def test_each_wait_is_the_drawn_share_of_its_window() -> None:
    waits: list[float] = []
    backoff = Backoff(waits.append, draw=lambda: 0.25)
    for tries in range(5):
        backoff(tries)
    assert waits == pytest.approx([0.00025, 0.0005, 0.001])


def test_without_a_pause_nothing_waits() -> None:
    Backoff(None, draw=lambda: 1.0)(8)  # no pause to call: returns at once


def contended_ledger(
    waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> tuple[JobLedger, UUID]:
    """A ledger with one job, whose every save from now on conflicts, as under a writer
    that always wins."""
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, pause=waits.append)
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id

    def conflict(*args: Any, **kwargs: Any) -> None:
        raise RecordConflictError("another writer appended first")

    monkeypatch.setattr(ledger, "_append", conflict)
    return ledger, job_id


def test_a_command_that_keeps_conflicting_waits_longer_each_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    ledger, job_id = contended_ledger(waits, monkeypatch)
    (result,) = ledger.execute_batch([ClaimJob(job_id=job_id, worker_id="w")], T0)
    assert isinstance(result, ConcurrencyExhausted)
    # BATCH_ROUNDS batch rounds, then BATCH_ROUNDS * 2 tries alone: one wait per retry
    # after the first, each under its window and most of them not nothing
    tries = BATCH_ROUNDS + BATCH_ROUNDS * 2
    assert len(waits) == tries - 2
    windows = [Backoff(None).window(t) for t in range(2, BATCH_ROUNDS)] + [
        Backoff(None).window(t) for t in range(BATCH_ROUNDS, BATCH_ROUNDS * 3)
    ]
    assert all(0 <= w <= window for w, window in zip(waits, windows, strict=True))
    assert sum(waits) > 0


def test_an_uncontended_command_never_waits() -> None:
    waits: list[float] = []
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, pause=waits.append)
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), T0)
    ledger.execute(RecordHeartbeat(job_id=job_id, worker_id="w", attempt=1), T0)
    assert waits == []
