"""Claims in one round trip on the local queue (ADR 155): what a claim of several messages
asks for and answers, and what becomes of a message whose claim the ledger refused.

A store that can (PostgreSQL, ``adapters/postgres/claims.py``) receives up to N visible
messages, appends their ``Claimed`` events and settles the refused ones in ONE
transaction on the ledger's database; the worker gets the claimed jobs with their
receipts, so a job costs it one call to start instead of a receive and a claim.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from ledger.errors import (
    IllegalTransition,
    JobNotDue,
    JobNotFound,
    LedgerError,
    MalformedMessage,
    QueueAtCapacity,
    QueuePaused,
)
from ledger.ports.transport import (
    ATTR_ATTEMPT,
    ATTR_JOB_ID,
    JobMessage,
    Received,
    decode_message,
)

MAX_CLAIMS = 100
"""The most jobs one claim takes (``max`` is 1 to this)."""

PAUSED_DELAY = 2.0
"""Seconds a message of a paused queue stays invisible after its claim was refused."""
FULL_DELAY = 0.5
"""Seconds one of a queue at its cap stays invisible (a slot frees when a job ends)."""
UNKNOWN_DELAY = 1.0
"""Seconds one whose claim failed otherwise stays invisible."""


class ClaimRequest(msgspec.Struct, frozen=True):
    """Up to ``limit`` jobs for ``worker_id`` from the local queue ``queue_name``."""

    worker_id: str
    limit: int
    visibility: float
    """Seconds the claimed messages stay invisible (the worker's heartbeats extend it)."""
    queues: list[str] | None = None
    """Only messages of these logical queues (``None``: every queue)."""
    queue_name: str = "jobs"
    max_receives: int = 5
    customer_id: str | None = None
    """A scoped worker key's customer: only that customer's jobs are claimed."""


class ReportBatch(msgspec.Struct, frozen=True):
    """Reports of attempts' ends, each with the ``(seq, token)`` of the message to delete
    with it (``None``: none)."""

    commands: list[Any]
    """``CompleteJob``, ``FailJob`` or ``ReportCancelled`` commands."""
    receipts: list[tuple[int, str] | None]
    queue_name: str = "jobs"


class ClaimedMessage(msgspec.Struct, frozen=True):
    """A job claimed for the worker, with the message that holds it."""

    job_id: str
    attempt: int
    customer_id: str
    queue: str
    seq: int
    receipt: str
    """The local queue's receipt (``seq:token``): extend and delete it as a received one."""
    message_id: str
    body: str
    message_attempt: int
    receive_count: int
    sent_at: float
    payload: Any = None
    traceparent: str | None = None
    message: JobMessage | None = None
    """``body`` as the ledger decoded it (ADR 209): the worker uses it instead of decoding
    ``body`` again. ``None`` from a ledger that does not send it: ``body`` is decoded."""


def fate_of_refusal(error: LedgerError, now: datetime) -> float | None:
    """What a refused claim does to its message, as the worker's own rule
    (``adapters/worker/runner.py``): ``None`` deletes it (the job is not pending or does
    not exist: the message is obsolete), else the seconds until it is visible again,
    handed back uncounted (ADR 88)."""
    if isinstance(error, IllegalTransition | JobNotFound):
        return None
    if isinstance(error, JobNotDue):
        return seconds_until(error.not_before, now)
    if isinstance(error, QueuePaused):
        return PAUSED_DELAY
    if isinstance(error, QueueAtCapacity):
        return FULL_DELAY
    return UNKNOWN_DELAY


def seconds_until(iso: str, now: datetime) -> float:
    """Seconds from ``now`` to the ISO time ``iso`` (0 if past, 1 if unreadable)."""
    try:
        due = datetime.fromisoformat(iso)
    except ValueError:
        return UNKNOWN_DELAY
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    seconds = (due - now).total_seconds()
    return 0.0 if not math.isfinite(seconds) else max(0.0, seconds)


def received_of(claimed: ClaimedMessage) -> Received:
    """The claimed message as the local queue would have received it (its receipt extends
    and deletes it there)."""
    attributes = {ATTR_JOB_ID: claimed.job_id, ATTR_ATTEMPT: str(claimed.message_attempt)}
    message = claimed.message
    if message is None:
        message = decode_message(claimed.body, attributes)
    elif message.attributes != attributes:  # decode_message's check, on the decoded body
        raise MalformedMessage(f"message attributes {attributes} do not match the body")
    return Received(
        message=message,
        message_id=claimed.message_id,
        receipt=claimed.receipt,
        receive_count=claimed.receive_count,
        sent_at=datetime.fromtimestamp(claimed.sent_at, UTC),
        attributes=attributes,
    )
