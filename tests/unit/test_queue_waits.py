"""How long a worker leaves a queue alone after its claim was refused by the queue."""

from __future__ import annotations

import pytest

from adapters.worker.queue_waits import FULL_WAIT, PAUSED_WAIT, QueueWaits, wait_for
from ledger.errors import IllegalTransition, LedgerError, QueueAtCapacity, QueuePaused


@pytest.mark.parametrize(("error", "wait"), [
    (QueuePaused("emails"), PAUSED_WAIT),
    (QueueAtCapacity("reports", 5), FULL_WAIT),
    (IllegalTransition("j", "completed", "claim"), None),
    (LedgerError("other"), None),
])
def test_only_queue_refusals_make_the_worker_wait(error: LedgerError, wait: float | None) -> None:
    assert wait_for(error) == wait


def test_a_waited_on_queue_counts_down_and_the_receive_pauses_only_when_all_wait() -> None:
    now = [100.0]
    waits = QueueWaits(clock=lambda: now[0], jitter=lambda: 0.0)
    assert waits.wait("emails", 2.0) == 2.0
    assert waits.remaining("emails") == 2.0
    assert waits.remaining("reports") == 0.0
    assert waits.all_waiting(None) == 0.0  # a worker of every queue never pauses
    assert waits.all_waiting(frozenset({"emails", "reports"})) == 0.0
    assert waits.all_waiting(frozenset({"emails"})) == 2.0
    now[0] += 1.5
    assert waits.remaining("emails") == pytest.approx(0.5)
    now[0] += 1.0
    assert waits.remaining("emails") == 0.0


def test_jitter_stretches_a_wait_by_at_most_half() -> None:
    waits = QueueWaits(clock=lambda: 0.0, jitter=lambda: 1.0)
    assert waits.wait("emails", 2.0) == 3.0
