"""The writer expects back the callers its last batch answered (ADR 213): callers one
command at a time share batches whole, a lone caller is never delayed, a caller that
stopped costs one wait, and a function to run on the writer ends the wait at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.service.batching import BatchWriter
from ledger.application import JobLedger
from ledger.commands import AnyCommand, EnqueueJob

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MADE: list[JobLedger] = []


@pytest.fixture(autouse=True)
def _closed() -> Iterator[None]:
    """Each test's ledgers closed after it (not left to the collector's ``__del__``)."""
    yield
    while MADE:
        MADE.pop().close()


class SlowLedger(JobLedger):
    """An in-memory ledger whose transactions take ``seconds`` (a durable commit)."""

    def __init__(self, seconds: float) -> None:
        super().__init__({"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.seconds = seconds
        self.sizes: list[int] = []
        MADE.append(self)

    def execute_batch(self, commands: Sequence[AnyCommand], now: datetime) -> list[Any]:
        self.sizes.append(len(commands))
        time.sleep(self.seconds)
        return super().execute_batch(commands, now)


def callers(writer: BatchWriter, count: int, calls: int) -> None:
    def one() -> None:
        for _ in range(calls):
            writer.submit(EnqueueJob(customer_id="c")).result(10)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_callers_one_command_at_a_time_share_whole_batches() -> None:
    ledger = SlowLedger(0.005)
    with BatchWriter(ledger, lambda: T0, return_wait=0.2) as writer:
        callers(writer, 4, 30)
    steady = ledger.sizes[5:]
    # without the wait the callers fell into batches of one and three (or two and two)
    assert sum(steady) / len(steady) > 3.5, ledger.sizes


def test_a_lone_caller_is_never_delayed() -> None:
    ledger = SlowLedger(0.0)
    with BatchWriter(ledger, lambda: T0, return_wait=2.0) as writer:
        started = time.monotonic()
        callers(writer, 1, 20)
        assert time.monotonic() - started < 2.0  # not one wait
    assert ledger.sizes == [1] * 20


def test_a_caller_that_stopped_costs_one_wait() -> None:
    ledger = SlowLedger(0.0)
    with BatchWriter(ledger, lambda: T0, return_wait=1.0) as writer:
        callers(writer, 4, 5)  # four callers; the last batch answered some of them
        started = time.monotonic()
        callers(writer, 1, 10)  # then one alone: the first call may wait, no more
        assert time.monotonic() - started < 2 * 1.0


def test_a_function_to_run_ends_the_wait() -> None:
    ledger = SlowLedger(0.0)
    gate = threading.Event()
    with BatchWriter(ledger, lambda: T0, return_wait=5.0) as writer:
        held = writer.call(lambda: gate.wait(5))  # the writer is busy: the four queue
        first = [writer.submit(EnqueueJob(customer_id="c")) for _ in range(4)]
        gate.set()
        assert held.result(5) is True
        for future in first:
            future.result(5)
        assert ledger.sizes == [4]  # one batch: four callers expected back
        pending = writer.submit(EnqueueJob(customer_id="c"))  # the others are not back
        time.sleep(0.2)
        assert not pending.done()  # the writer waits for them
        started = time.monotonic()
        ran = writer.call(lambda: "ran")
        assert ran.result(2) == "ran"
        assert pending.result(2) is not None
        assert time.monotonic() - started < 1.0


def test_callers_that_come_back_late_are_not_waited_for_every_batch() -> None:
    """Commands that keep arriving, slower than the writer expects (HTTP requests): after
    a wait they do not fill, the writer commits the next 1, 2, 4, ... batches at once."""
    ledger = SlowLedger(0.01)
    waits: list[int] = []
    with BatchWriter(ledger, lambda: T0, return_wait=0.005) as writer:
        wait_for = writer._wait_for

        def counted(*args: Any) -> Any:
            waits.append(1)
            return wait_for(*args)

        writer._wait_for = counted  # type: ignore[method-assign, assignment]
        futures = []
        for _ in range(300):  # one a millisecond, none waiting for its answer
            futures.append(writer.submit(EnqueueJob(customer_id="c")))
            time.sleep(0.001)
        for future in futures:
            future.result(10)
    assert len(ledger.sizes) >= 15
    assert len(waits) <= 8, (len(waits), len(ledger.sizes))  # about one per batch without
