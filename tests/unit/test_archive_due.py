"""The archive round's gate (ADR 110, segments that do not pile up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.policies.archive_due import ArchiveDue, worth_a_segment

CUT = datetime(2026, 1, 31, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(("due", "worth"), [
    (ArchiveDue(0, 0, None), False),                      # nothing due
    (ArchiveDue(10, 480, CUT - timedelta(hours=1)), False),  # few, and fresh
    (ArchiveDue(10, 480, CUT - DAY), False),              # exactly a day: not yet
    (ArchiveDue(10, 480, CUT - DAY - timedelta(seconds=1)), True),  # waited a day
    (ArchiveDue(1000, 50_000, CUT - timedelta(minutes=5)), True),   # enough events
    (ArchiveDue(1000, 49_999, CUT - timedelta(minutes=5)), False),
])
def test_a_round_is_worth_a_segment_with_enough_events_or_a_day_of_waiting(
    due: ArchiveDue, worth: bool,
) -> None:
    assert worth_a_segment(due, cut=CUT, min_events=50_000, max_wait=DAY) is worth
