"""Traced without DEBUG, :func:`observe` looks only at the commands that can make a span
or a line (issue 18's bar): a worker's claim, heartbeat and report make none (their span
is the worker's ``job.attempt``), so they are skipped before their decisions are built."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest

from adapters.tracing import decisions
from ledger.commands import (
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    Outcome,
    RecordHeartbeat,
    ReleaseJob,
)
from tests.support.tracing import memory_exporter, named

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _outcome() -> Outcome:
    return Outcome(job_id=uuid4(), status="running", attempt=1, version=2, created=True,
                   traceparent=TRACEPARENT)


def _batch(jobs: int) -> tuple[list[Any], list[Any]]:
    commands: list[Any] = []
    for _ in range(jobs):
        job_id = uuid4()
        commands += [EnqueueJob(customer_id="acme"), ClaimJob(job_id=job_id, worker_id="w1"),
                     RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w1"),
                     CompleteJob(job_id=job_id, attempt=1, worker_id="w1"),
                     ReleaseJob(job_id=job_id)]
    return commands, [_outcome() for _ in commands]


@pytest.fixture
def level() -> Iterator[Callable[[int], None]]:
    """Set the decisions logger's level for one test (``setLevel`` clears its cache)."""
    saved = decisions.log.level
    yield decisions.log.setLevel
    decisions.log.setLevel(saved)


def _count_decisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = decisions._decisions

    def counted(command: Any, outcome: Outcome) -> Any:
        seen.append(type(command).__name__)
        return real(command, outcome)

    monkeypatch.setattr(decisions, "_decisions", counted)
    return seen


def test_traced_per_job_steps_without_a_span_are_skipped(
    monkeypatch: pytest.MonkeyPatch, level: Callable[[int], None]
) -> None:
    exporter = memory_exporter()
    level(logging.INFO)
    seen = _count_decisions(monkeypatch)
    decisions.observe(*_batch(10))
    assert seen == ["EnqueueJob"] * 10  # 50 before: every claim, heartbeat, report, release
    assert len(named(exporter.get_finished_spans(), "job.enqueued")) == 10


def test_under_debug_every_step_still_logs(
    monkeypatch: pytest.MonkeyPatch, level: Callable[[int], None]
) -> None:
    memory_exporter()
    level(logging.DEBUG)
    seen = _count_decisions(monkeypatch)
    decisions.observe(*_batch(2))
    assert len(seen) == 10
