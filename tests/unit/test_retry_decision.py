"""Requeue or dead letter, decided once: the retry policy's next step as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.policies.retry import DeadLetter, NextStep, Requeue, RetryPolicy, next_step

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TEN = timedelta(seconds=10)


@pytest.mark.parametrize(
    ("used", "maximum", "delay", "expected"),
    [
        (1, 3, TEN, Requeue(not_before=NOW + TEN)),
        (2, 3, TEN, Requeue(not_before=NOW + TEN)),
        (1, 3, timedelta(0), Requeue(not_before=None)),  # no delay: claimable at once
        (3, 3, TEN, DeadLetter(exhausted=True)),
        (4, 3, TEN, DeadLetter(exhausted=True)),  # a redrive's old claims never count twice
        (1, 1, None, DeadLetter(exhausted=True)),
        (1, 5, None, DeadLetter(exhausted=False)),  # the policy gave up with attempts left
    ],
)
def test_next_step_after_an_attempt_that_did_not_succeed(
    used: int, maximum: int, delay: timedelta | None, expected: NextStep
) -> None:
    assert next_step(used, maximum, delay, NOW) == expected


@pytest.mark.parametrize(
    ("used", "maximum", "draw", "expected"),
    [
        (1, 3, 0.0, Requeue(not_before=NOW + timedelta(seconds=5))),
        (2, 3, 0.999999, Requeue(not_before=NOW + timedelta(seconds=19.99999))),
        (3, 3, 0.5, DeadLetter(exhausted=True)),
        (12, 20, 1.0, Requeue(not_before=NOW + timedelta(hours=1))),
    ],
)
def test_next_step_with_the_policy_s_delay(
    used: int, maximum: int, draw: float, expected: NextStep
) -> None:
    policy = RetryPolicy(10, 3600)
    assert next_step(used, maximum, policy.delay(used, maximum, draw), NOW) == expected
