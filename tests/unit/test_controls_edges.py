"""Operator controls at the edges a client can reach (issue 14 QA): odd due times.

A due time far ahead used to be accepted as ``run_at`` (``delay_seconds`` stops at 366
days, ``run_at`` did not), and one beyond year 9999 in UTC stopped the ``job_status``
view for good (``OverflowError`` folding the ``Enqueued``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.service.actions import action_filter
from ledger.action import ActionFilter, ActionKind, InvalidFilter
from ledger.commands import EnqueueJob
from ledger.errors import InvalidCommand
from ledger.policies.controls import MAX_SCHEDULE_AHEAD, scheduled_until
from ledger.ports.transport import MAX_DELAY_SECONDS
from projections.job_status import JobStatusView
from projections.memory import MemoryView
from tests.support.projection_events import decoded, logged, memory_ledger

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
YEAR_10000_IN_UTC = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize("run_at", [
    YEAR_10000_IN_UTC,
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    T0 + MAX_SCHEDULE_AHEAD + timedelta(seconds=1),
])
def test_a_run_at_beyond_the_longest_delay_is_refused(run_at: datetime) -> None:
    with pytest.raises(InvalidCommand, match="run_at"):
        scheduled_until(run_at, None, T0)
    ledger = memory_ledger()
    with pytest.raises(InvalidCommand, match="run_at"):
        ledger.execute(EnqueueJob(customer_id="acme", run_at=run_at), T0)
    assert logged(ledger) == []  # nothing reached the log for a view to choke on


@pytest.mark.parametrize(("run_at", "due"), [
    (T0 + MAX_SCHEDULE_AHEAD, T0 + MAX_SCHEDULE_AHEAD),  # the longest delay, as delay_seconds
    (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), None),  # long past: due now
    (datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=5))), None),
])
def test_a_run_at_up_to_the_longest_delay_or_in_the_past_is_accepted(
    run_at: datetime, due: datetime | None
) -> None:
    assert scheduled_until(run_at, None, T0) == due
    assert MAX_SCHEDULE_AHEAD.total_seconds() == MAX_DELAY_SECONDS  # delay_seconds' bound


def test_the_job_status_view_folds_every_accepted_due_time() -> None:
    ledger = memory_ledger()
    for run_at in (T0 + MAX_SCHEDULE_AHEAD, datetime(1, 1, 1, tzinfo=UTC)):
        ledger.execute(EnqueueJob(customer_id="acme", run_at=run_at), T0)
    view = MemoryView(JobStatusView())
    view.feed(decoded(logged(ledger)))  # a due time that cannot be folded would raise here
    assert sorted(row["status"] for row in view.rows["job_status"].values()) == [
        "pending", "scheduled",
    ]


@pytest.mark.parametrize("kind", [ActionKind.CANCEL, ActionKind.REQUEUE])
@pytest.mark.parametrize("data", [{}, ActionFilter()])
def test_a_bulk_cancel_or_requeue_without_a_filter_is_refused(
    kind: ActionKind, data: dict[str, object] | ActionFilter
) -> None:
    # POST /actions {"kind": "cancel"} cancelled every job of every customer; the CLI
    # already asks for a filter
    with pytest.raises(InvalidFilter, match="needs a filter"):
        action_filter(kind, data)


def test_a_bulk_action_with_any_criterion_and_a_retry_of_every_dead_letter_are_accepted() -> None:
    assert action_filter(ActionKind.CANCEL, {"queue": "emails"}) == ActionFilter(queue="emails")
    assert action_filter(ActionKind.REQUEUE, {"status": "scheduled"}).status == "scheduled"
    assert action_filter(ActionKind.RETRY, {}) == ActionFilter(status="dead_lettered")
