"""Dead-letter alerts: when to send, what the message says, what an answer means.

Pure: the caller passes the clock and the HTTP answer; the Slack adapter does the I/O.
The message keeps the existing deployment's format: a header, one block per job with
Job ID, Customer ID, Retry Attempts and Message ID, then the action items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from ledger.errors import AlreadyAlerted, IllegalTransition

MAX_JOBS_PER_MESSAGE = 45
"""Slack allows 50 blocks per message: a header, 45 jobs, dividers are fields, actions."""


@dataclass(frozen=True, slots=True)
class DeadLetterNotice:
    """A dead-lettered job that needs an alert (one per dead-letter event)."""

    job_id: UUID
    dead_letter_version: int
    customer_id: str
    attempts: int
    message_id: str | None
    last_error: str | None
    dead_lettered_at: datetime

    @property
    def key(self) -> str:
        """Identifies the dead letter: one alert per key, ever."""
        return f"{self.job_id}:{self.dead_letter_version}"


def check_alert(
    job_id: UUID,
    status: str,
    dead_letter_version: int,
    *,
    last_dead_letter: int | None,
    alerted_version: int | None,
) -> None:
    """Raise unless the dead letter at ``dead_letter_version`` still awaits its one alert.

    Raises :class:`AlreadyAlerted` if that dead letter's alert is already recorded and
    :class:`IllegalTransition` if the job has no such dead letter.
    """
    if last_dead_letter is None or dead_letter_version > last_dead_letter:
        raise IllegalTransition(job_id, status, "alert an unknown dead letter")
    if alerted_version is not None and dead_letter_version <= alerted_version:
        raise AlreadyAlerted(job_id, dead_letter_version)


def due_groups(
    pending: Sequence[DeadLetterNotice],
    now: datetime,
    *,
    threshold: int,
    group_wait: timedelta,
) -> list[list[DeadLetterNotice]]:
    """The alert messages to send now, oldest first; empty when nothing is due.

    Nothing is sent until at least ``threshold`` dead letters are unalerted, and then only
    once the oldest has waited ``group_wait`` for others to join it. All pending notices
    go out together, split into messages of at most :data:`MAX_JOBS_PER_MESSAGE`.
    """
    if len(pending) < threshold or not pending:
        return []
    ordered = sorted(pending, key=lambda n: (n.dead_lettered_at, n.key))
    if now - ordered[0].dead_lettered_at < group_wait:
        return []
    return [
        list(ordered[i : i + MAX_JOBS_PER_MESSAGE])
        for i in range(0, len(ordered), MAX_JOBS_PER_MESSAGE)
    ]


def slack_message(notices: Sequence[DeadLetterNotice]) -> dict[str, Any]:
    """The Slack webhook body for one group of dead letters."""
    count = len(notices)
    title = f"Dead Letter Queue Alert: {count} job{'s' if count != 1 else ''} failed permanently"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f":rotating_light: {title}"}}
    ]
    for notice in notices:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Job ID:*\n`{notice.job_id}`"},
                    {"type": "mrkdwn", "text": f"*Customer ID:*\n{notice.customer_id}"},
                    {"type": "mrkdwn", "text": f"*Retry Attempts:*\n{notice.attempts}"},
                    {"type": "mrkdwn", "text": f"*Message ID:*\n{notice.message_id or 'n/a'}"},
                ],
            }
        )
    first = notices[0].job_id if notices else "JOB_ID"
    blocks.append(
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    "*Action Items:*\n"
                    f"• Read each job's history: `ledger jobs show {first}`\n"
                    "• Fix the cause (the last error is in the history)\n"
                    f"• Redrive once fixed: `ledger dlq redrive {first}` (or `--all`)"
                ),
            },
        }
    )
    return {"text": title, "blocks": blocks}


@dataclass(frozen=True, slots=True)
class Delivered:
    """The webhook accepted the alert."""


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A transient refusal: try again after ``delay``."""

    delay: timedelta
    reason: str


@dataclass(frozen=True, slots=True)
class PermanentFailure:
    """The webhook will never accept this (bad URL, revoked app): stop and say so."""

    reason: str


DeliveryOutcome = Delivered | RetryLater | PermanentFailure


def classify_answer(
    status: int, retry_after: str | None, body: str, attempt: int
) -> DeliveryOutcome:
    """What an HTTP answer from the webhook means for the alert.

    429 waits for ``Retry-After`` (seconds; 1 s when absent or unreadable); 5xx and 408
    back off exponentially from 1 s, capped at 5 minutes; any other 4xx (Slack's
    ``no_service``, ``invalid_payload``, ``channel_not_found``...) is permanent.
    """
    if 200 <= status < 300:
        return Delivered()
    reason = f"HTTP {status}: {body.strip()[:200]}"
    if status == 429:
        return RetryLater(timedelta(seconds=_seconds(retry_after)), reason)
    if status >= 500 or status == 408:
        return RetryLater(backoff(attempt), reason)
    return PermanentFailure(reason)


def backoff(attempt: int) -> timedelta:
    """Delay before retrying a transient failure: 1 s, 2 s, 4 s... capped at 5 minutes."""
    return timedelta(seconds=min(300.0, 2.0 ** min(max(attempt - 1, 0), 16)))


def _seconds(retry_after: str | None) -> float:
    try:
        value = float(retry_after) if retry_after is not None else 1.0
    except ValueError:
        return 1.0
    return min(max(value, 0.0), 3600.0)
