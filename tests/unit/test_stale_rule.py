"""The stale rule as a table: rows, ``now`` and a threshold in, decisions out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.policies.stale import (
    StaleCandidate,
    StaleDecision,
    is_stale,
    stale_cutoff,
    stale_decisions,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
THRESHOLD = timedelta(seconds=60)
JOB = UUID(int=1)


def row(silent_seconds: float, status: str = "in_progress", attempt: int = 1) -> StaleCandidate:
    return StaleCandidate(JOB, attempt, status, "w1", NOW - timedelta(seconds=silent_seconds))


@pytest.mark.parametrize(
    ("candidate", "stale"),
    [
        (row(0), False),
        (row(59.999999), False),
        (row(60), False),  # exactly the threshold: not yet
        (row(60.000001), True),
        (row(3600), True),
        (row(-5), False),  # a heartbeat recorded after ``now`` (clocks of several hosts)
        (row(3600, status="pending"), False),
        (row(3600, status="completed"), False),
        (row(3600, status="dead_lettered"), False),
    ],
    ids=lambda v: repr(v) if isinstance(v, bool) else None,
)
def test_an_attempt_is_stale_when_silent_for_longer_than_the_threshold(
    candidate: StaleCandidate, stale: bool
) -> None:
    decisions = stale_decisions([candidate], NOW, THRESHOLD)
    expected = [
        StaleDecision(JOB, candidate.attempt, "w1", candidate.last_heartbeat_at, THRESHOLD,
                      NOW - candidate.last_heartbeat_at)
    ] if stale else []
    assert decisions == expected


@pytest.mark.parametrize(
    ("silences", "expected"),
    [
        ([], []),
        ([10, 70, 30, 90], [70, 90]),  # the rows' order is kept
        ([61, 62], [61, 62]),
        ([1, 2], []),
    ],
)
def test_decisions_keep_the_stale_rows_in_their_order(
    silences: list[int], expected: list[int]
) -> None:
    rows = [
        StaleCandidate(UUID(int=s), 1, "in_progress", None, NOW - timedelta(seconds=s))
        for s in silences
    ]
    decisions = stale_decisions(rows, NOW, THRESHOLD)
    assert [d.job_id.int for d in decisions] == expected
    assert [d.silent_for for d in decisions] == [timedelta(seconds=s) for s in expected]
    assert all(d.threshold == THRESHOLD for d in decisions)


@given(
    silent=st.timedeltas(min_value=timedelta(days=-1), max_value=timedelta(days=1)),
    threshold=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2)),
)
def test_the_views_cutoff_is_the_same_rule(silent: timedelta, threshold: timedelta) -> None:
    """A view's index asks for heartbeats before the cutoff: exactly the stale ones."""
    last = NOW - silent
    assert is_stale(last, NOW, threshold) == (last < stale_cutoff(NOW, threshold))
    assert is_stale(last, NOW, threshold) == (NOW - last > threshold)
