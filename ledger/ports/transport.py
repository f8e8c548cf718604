"""The transport port: how job messages travel from the ledger to workers.

A job message is a small msgspec Struct; the transport carries it with SQS semantics,
whichever adapter implements the port (``adapters/sqs/`` on SQS, ``adapters/local_queue/queue.py``
on the ledger's own database or in memory):

- a received message is invisible to other receivers for its *visibility timeout*; unless
  it is deleted it becomes visible again, and every receive increments its *receive count*;
- a message received ``max receives`` times is moved to the *dead-letter queue* instead of
  being delivered again; dead letters can be read and moved back (redriven);
- a message can be sent with a *delay*; delays longer than SQS's native 15 minutes are
  honoured too (docs/adr/0020-transport-port-local-queue-and-sqs.md).

This module is pure: it declares the port, the message types, the one strict decoder of
message bodies and the validation every adapter applies to its arguments. Delivery is
at-least-once; the ledger's attempt fencing makes duplicates harmless.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Annotated, Final, Protocol
from uuid import UUID

import msgspec

from ledger.commands import Name, QueueName
from ledger.errors import InvalidTransportRequest, MalformedMessage

MessageAttempt = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
MessagePriority = Annotated[int, msgspec.Meta(ge=-100, le=100)]
"""A job's priority as its message carries it (ADR 100): higher is received first."""

MAX_BODY_BYTES: Final = 4096
"""A job message body is small; anything larger is not one of ours."""
MAX_RECEIVE_MESSAGES: Final = 10
"""At most this many messages per receive (SQS's limit, kept by every adapter)."""
MAX_WAIT_SECONDS: Final = 20.0
"""The longest long poll (SQS's limit)."""
MAX_VISIBILITY_SECONDS: Final = 43_200.0
"""The longest visibility timeout (SQS's limit: 12 hours)."""
MAX_DELAY_SECONDS: Final = 366 * 86_400.0
"""The longest delay any adapter accepts (far beyond SQS's native 15 minutes)."""
BATCH_SIZE: Final = 10
"""Messages per send-batch call (SQS's limit)."""

ATTR_JOB_ID: Final = "job_id"
ATTR_ATTEMPT: Final = "attempt"


class JobMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a worker needs to find and claim a job; the job itself lives in the ledger."""

    job_id: UUID
    attempt: MessageAttempt
    """The job's attempt when the message was sent (the claim opens ``attempt + 1``)."""
    customer_id: Name
    queue: QueueName = "default"
    dedup_key: Name
    """Names this send: a resend of the same decision carries the same key."""
    priority: MessagePriority = 0
    """The job's priority: a transport that supports it hands out higher first, in send
    order within a priority (docs/adr/0100-operator-controls.md)."""

    @property
    def attributes(self) -> dict[str, str]:
        """The message attributes that travel beside the body."""
        return {ATTR_JOB_ID: str(self.job_id), ATTR_ATTEMPT: str(self.attempt)}


class Outgoing(msgspec.Struct, frozen=True):
    """A message to send, with its own delay (for :meth:`Transport.send_batch`)."""

    message: JobMessage
    delay: float = 0.0


class Received(msgspec.Struct, frozen=True, kw_only=True):
    """A message handed to one receiver until its visibility timeout ends."""

    message: JobMessage
    message_id: str
    receipt: str
    """Opaque handle for :meth:`Transport.extend`, ``delete`` and ``release``."""
    receive_count: int
    sent_at: datetime
    attributes: dict[str, str]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message found in the dead-letter queue (it exceeded the max receive count)."""

    message_id: str
    receive_count: int
    """As the queue reports it; on SQS reading the dead-letter queue increments it too."""
    max_receives: int | None = None
    """The queue's configured maximum (SQS's ``maxReceiveCount``) when the transport knows
    it: what the message exceeded, unlike ``receive_count``, which reads raise."""
    body: str
    message: JobMessage | None
    """The decoded body, or ``None`` when the body is not a valid job message."""
    receipt: str
    sent_at: datetime
    attributes: dict[str, str]


class Transport(Protocol):
    """Sends job messages and hands them to workers (async: workers are)."""

    async def send(self, message: JobMessage, *, delay: float = 0.0) -> str:
        """Send one message, visible after ``delay`` seconds; return its message id."""
        ...

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        """Send many messages (in groups of :data:`BATCH_SIZE`); return their ids in order.

        Every entry is tried. If any failed, raises
        :class:`~ledger.errors.BatchSendFailed` naming each failed entry and the ids of
        the ones that were sent.
        """
        ...

    async def receive(
        self,
        *,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
        queues: Collection[str] | None = None,
    ) -> list[Received]:
        """Receive up to ``max_messages``, waiting up to ``wait_seconds`` for the first.

        Returns as soon as a message is available. ``visibility_timeout`` defaults to the
        queue's own. With ``queues``, only messages of those logical queues
        (:attr:`JobMessage.queue`) are received, and a receive never counts against the
        receive count of another queue's message (docs/adr/0070-one-logical-queue-per-receive.md).
        """
        ...

    async def extend(self, received: Received, visibility_timeout: float) -> None:
        """Keep a message invisible for ``visibility_timeout`` seconds from now."""
        ...

    async def delete(self, received: Received) -> None:
        """Remove a handled message for good."""
        ...

    async def release(
        self, received: Received, *, delay: float = 0.0, attempted: bool = True
    ) -> None:
        """Make a received message visible again after ``delay`` seconds.

        ``attempted=False`` says no handler ran for this receive (the worker was draining,
        or the ledger did not answer its claim): the receive is handed back uncounted, so
        such receives never dead-letter a message (docs/adr/0088-unattempted-releases.md).
        The receipt is spent either way on the local queue; on SQS the message comes back
        as a fresh copy with a new message id.
        """
        ...

    async def read_dead_letters(self, *, max_messages: int = 10) -> list[DeadLetter]:
        """Up to ``max_messages`` dead letters, oldest first, without removing them."""
        ...

    async def delete_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Remove a dead letter (once the ledger has recorded it)."""
        ...

    async def redrive(
        self, message_ids: Collection[str] | None = None, *, max_messages: int = 100
    ) -> list[DeadLetter]:
        """Move dead letters (those named, or the oldest) back to the queue.

        Each is sent to the queue again, then deleted from the dead-letter queue; the
        receive count starts again. Returns what was moved. Dead letters whose body is
        not a job message are left where they are.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the transport cannot be used afterwards."""
        ...


# -- message bodies -----------------------------------------------------------------------

_DECODER: Final = msgspec.json.Decoder(JobMessage)
_ENCODER: Final = msgspec.json.Encoder()


def encode_message(message: JobMessage) -> str:
    """The body of ``message`` on the wire (JSON text)."""
    return _ENCODER.encode(message).decode()


def decode_message(body: str | bytes, attributes: dict[str, str] | None = None) -> JobMessage:
    """Decode a body strictly; raise :class:`MalformedMessage` unless it is a job message.

    When ``attributes`` are given, the job id and attempt they carry must match the body.
    """
    data = body.encode() if isinstance(body, str) else body
    if len(data) > MAX_BODY_BYTES:
        raise MalformedMessage(f"message body of {len(data)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        message = _DECODER.decode(data)
    except msgspec.DecodeError as error:
        raise MalformedMessage(f"not a job message: {error}") from None
    if attributes is not None:
        expected = message.attributes
        carried = {key: attributes.get(key) for key in expected}
        if carried != expected:
            raise MalformedMessage(
                f"message attributes {carried} do not match the body {expected}"
            )
    return message


# -- argument checks shared by the adapters -------------------------------------------------


def check_delay(delay: float) -> float:
    """A valid delay in seconds, or :class:`InvalidTransportRequest`."""
    return _check_range("delay", delay, 0.0, MAX_DELAY_SECONDS)


def check_visibility(visibility_timeout: float) -> float:
    return _check_range("visibility timeout", visibility_timeout, 0.0, MAX_VISIBILITY_SECONDS)


def check_wait(wait_seconds: float) -> float:
    return _check_range("wait", wait_seconds, 0.0, MAX_WAIT_SECONDS)


def check_max_messages(max_messages: int, limit: int = MAX_RECEIVE_MESSAGES) -> int:
    if not 1 <= max_messages <= limit:
        raise InvalidTransportRequest(f"max_messages must be 1..{limit}, got {max_messages}")
    return max_messages


def _check_range(what: str, value: float, low: float, high: float) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
        raise InvalidTransportRequest(f"{what} must be {low:g}..{high:g} seconds, got {value!r}")
    return float(value)


def outgoing(entries: Sequence[JobMessage | Outgoing]) -> list[Outgoing]:
    """Every batch entry as an :class:`Outgoing` (a bare message has no delay)."""
    return [e if isinstance(e, Outgoing) else Outgoing(e) for e in entries]


__all__ = [
    "BATCH_SIZE",
    "MAX_BODY_BYTES",
    "MAX_DELAY_SECONDS",
    "MAX_RECEIVE_MESSAGES",
    "MAX_VISIBILITY_SECONDS",
    "MAX_WAIT_SECONDS",
    "DeadLetter",
    "JobMessage",
    "MessagePriority",
    "Outgoing",
    "Received",
    "Transport",
    "check_delay",
    "check_max_messages",
    "check_visibility",
    "check_wait",
    "decode_message",
    "encode_message",
    "outgoing",
]
