"""The queue controls' audit on hand-built logs: a claim while paused and a claim beyond
the cap are violations; claims before the first control and a cap lowered below the
running jobs are not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.audit import Step
from ledger.queue_audit import QueueAudit

T0 = datetime(2026, 12, 1, tzinfo=UTC)
Q = "q-1"

Event = tuple[str, str, int | None]
"""(kind, job or queue id, attempt or max_running)."""


def run(events: list[Event]) -> list[str]:
    """Fold ``events``; jobs a..z are of queue emails; a job is in progress from its
    Claimed to its Completed."""
    audit = QueueAudit()
    running: set[str] = set()
    for position, (kind, who, value) in enumerate(events, start=1):
        if kind == "Opened":
            audit.opened(Q, "emails")
        elif kind in ("Paused", "Resumed", "LimitSet"):
            audit.control(Q, kind, value)
        else:
            if kind == "Enqueued":
                audit.enqueued(who, "emails")
            if kind == "Claimed":
                running.add(who)
            elif kind == "Completed":
                running.discard(who)
            step = Step(position, position, kind, T0, attempt=value, worker_id="w")
            audit.job_step(who, step, who in running)
    return [v.invariant for v in audit.violations]


def jobs(*names: str) -> list[Event]:
    return [("Enqueued", n, None) for n in names]


@pytest.mark.parametrize(("events", "found"), [
    ([*jobs("a"), ("Opened", Q, None), ("Paused", Q, None), ("Claimed", "a", 1)],
     ["claimed_while_paused"]),
    ([*jobs("a"), ("Opened", Q, None), ("Paused", Q, None), ("Resumed", Q, None),
      ("Claimed", "a", 1)], []),
    ([*jobs("a", "b"), ("Opened", Q, None), ("LimitSet", Q, 1), ("Claimed", "a", 1),
      ("Claimed", "b", 1)], ["cap_exceeded"]),
    ([*jobs("a", "b"), ("Opened", Q, None), ("LimitSet", Q, 1), ("Claimed", "a", 1),
      ("Completed", "a", 1), ("Claimed", "b", 1)], []),
    # claimed before the queue was first controlled: holds no slot, not counted
    ([*jobs("a", "b"), ("Claimed", "a", 1), ("Opened", Q, None), ("LimitSet", Q, 1),
      ("Claimed", "b", 1)], []),
    # a cap lowered below the running jobs: only a claim beyond it is a violation
    ([*jobs("a", "b", "c"), ("Opened", Q, None), ("Claimed", "a", 1), ("Claimed", "b", 1),
      ("LimitSet", Q, 1), ("Completed", "a", 1), ("Claimed", "c", 1)], ["cap_exceeded"]),
    ([*jobs("a", "b", "c"), ("Opened", Q, None), ("Claimed", "a", 1), ("Claimed", "b", 1),
      ("LimitSet", Q, 1), ("Completed", "a", 1), ("Completed", "b", 1),
      ("Claimed", "c", 1)], []),
    # a queue never controlled has no invariant
    ([*jobs("a", "b"), ("Claimed", "a", 1), ("Claimed", "b", 1)], []),
])
def test_queue_invariants(events: list[Event], found: list[str]) -> None:
    assert run(events) == found
