"""The pieces of claims in one round trip that need no database (ADR 155): a function run
on the batch writer's thread after the commands queued before it, concurrent reports
coalesced into one call, and what a refused claim does to its message."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from adapters.local_queue.claims import FULL_DELAY, PAUSED_DELAY, fate_of_refusal
from adapters.service.batching import BatchWriter
from adapters.worker.coalesce import Coalescer
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.errors import (
    IllegalTransition,
    JobNotDue,
    JobNotFound,
    LedgerError,
    QueueAtCapacity,
    QueuePaused,
    StoreUnavailable,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_call_runs_on_the_writer_thread_after_the_commands_before_it() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with BatchWriter(ledger, lambda: T0) as writer:
        enqueued = writer.submit(EnqueueJob(customer_id="c"))
        seen = writer.call(lambda: (threading.current_thread().name, enqueued.done()))
        assert seen.result(timeout=10) == ("ledger-batch-writer", True)
        failing = writer.call(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=10)
        after = writer.submit(EnqueueJob(customer_id="c"))  # the writer goes on
        assert after.result(timeout=10).status == "pending"  # type: ignore[union-attr]


def test_reports_arriving_while_one_is_sent_go_together() -> None:
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    async def main() -> list[int]:
        batches: Coalescer[int, int] = Coalescer(send, most=100)
        return list(await asyncio.gather(*(batches.submit(i) for i in range(5))))

    assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    assert sent == [[0], [1, 2, 3, 4]]


def test_a_failed_send_is_every_waiting_callers_error() -> None:
    async def send(items: list[int]) -> list[int]:
        await asyncio.sleep(0.01)
        raise StoreUnavailable("down")

    async def main() -> list[object]:
        batches: Coalescer[int, int] = Coalescer(send, most=100)
        return list(await asyncio.gather(*(batches.submit(i) for i in range(3)),
                                         return_exceptions=True))  # fmt: skip

    assert all(isinstance(r, StoreUnavailable) for r in asyncio.run(main()))


@pytest.mark.parametrize(("error", "fate"), [
    (IllegalTransition("j", "completed", "claim"), None),
    (JobNotFound("j"), None),
    (JobNotDue("j", (T0 + timedelta(seconds=7)).isoformat()), 7.0),
    (JobNotDue("j", "not a time"), 1.0),
    (QueuePaused("emails"), PAUSED_DELAY),
    (QueueAtCapacity("emails", 2), FULL_DELAY),
    (StoreUnavailable("down"), 1.0),
])  # fmt: skip
def test_a_refused_claim_deletes_an_obsolete_message_and_hands_back_the_others(
    error: LedgerError, fate: float | None
) -> None:
    assert fate_of_refusal(error, T0) == fate
