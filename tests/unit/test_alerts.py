"""Alert grouping, the Slack message format, and what webhook answers mean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ledger.policies.alerts import (
    MAX_JOBS_PER_MESSAGE,
    DeadLetterNotice,
    Delivered,
    PermanentFailure,
    RetryLater,
    classify_answer,
    due_groups,
    slack_message,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)
WAIT = timedelta(seconds=30)


def notice(offset: float = 0, customer: str = "acme") -> DeadLetterNotice:
    return DeadLetterNotice(
        job_id=uuid4(),
        dead_letter_version=7,
        customer_id=customer,
        attempts=3,
        message_id="m-1",
        last_error="boom",
        dead_lettered_at=T0 + timedelta(seconds=offset),
    )


@pytest.mark.parametrize(
    ("offsets", "now", "threshold", "expected_sizes"),
    [
        ([], 100, 1, []),
        ([0], 10, 1, []),  # still waiting for others to group with
        ([0], 30, 1, [1]),
        ([0, 5, 29], 31, 1, [3]),  # grouped with the ones that arrived meanwhile
        ([0, 5], 100, 3, []),  # below DLQ_ALERT_THRESHOLD
        ([0, 5, 6], 100, 3, [3]),
        ([float(i) for i in range(100)], 200, 1, [45, 45, 10]),
    ],
)
def test_due_groups(
    offsets: list[float], now: float, threshold: int, expected_sizes: list[int]
) -> None:
    pending = [notice(o) for o in offsets]
    groups = due_groups(pending, T0 + timedelta(seconds=now), threshold=threshold, group_wait=WAIT)
    assert [len(g) for g in groups] == expected_sizes
    sent = [n.key for g in groups for n in g]
    assert len(sent) == len(set(sent))
    if groups:
        assert sent == [n.key for n in sorted(pending, key=lambda n: n.dead_lettered_at)]


def test_slack_message_has_a_header_a_block_per_job_and_action_items() -> None:
    notices = [notice(0, "acme"), notice(1, "globex")]
    message = slack_message(notices)
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    assert "2 jobs" in blocks[0]["text"]["text"]
    for block, item in zip(blocks[1:3], notices, strict=True):
        texts = [f["text"] for f in block["fields"]]
        assert texts == [
            f"*Job ID:*\n`{item.job_id}`",
            f"*Customer ID:*\n{item.customer_id}",
            "*Retry Attempts:*\n3",
            "*Message ID:*\nm-1",
        ]
    assert blocks[-1]["text"]["text"].startswith("*Action Items:*")
    assert "ledger dlq redrive" in blocks[-1]["text"]["text"]
    assert len(slack_message([notice(i) for i in range(MAX_JOBS_PER_MESSAGE)])["blocks"]) <= 50


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "expected"),
    [
        (200, None, 1, Delivered()),
        (429, "7", 1, RetryLater(timedelta(seconds=7), "HTTP 429: rate_limited")),
        (429, None, 1, RetryLater(timedelta(seconds=1), "HTTP 429: rate_limited")),
        (429, "soon", 1, RetryLater(timedelta(seconds=1), "HTTP 429: rate_limited")),
        (500, None, 1, RetryLater(timedelta(seconds=1), "HTTP 500: rate_limited")),
        (503, None, 4, RetryLater(timedelta(seconds=8), "HTTP 503: rate_limited")),
        (502, None, 40, RetryLater(timedelta(seconds=300), "HTTP 502: rate_limited")),
        (404, None, 1, PermanentFailure("HTTP 404: rate_limited")),
        (403, None, 1, PermanentFailure("HTTP 403: rate_limited")),
    ],
)
def test_classify_answer(
    status: int, retry_after: str | None, attempt: int, expected: object
) -> None:
    assert classify_answer(status, retry_after, "rate_limited", attempt) == expected
