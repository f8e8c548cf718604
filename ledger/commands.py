"""Commands the ledger accepts and the results it returns.

Commands are msgspec Structs in one tagged union, so every boundary (HTTP bodies, queue
messages, the CLI) decodes them with one strict, typed decoder and the same limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec

from ledger.errors import InvalidCommand
from ledger.reserved_shape import TAG, check_untagged
from ledger.text import NAME_PATTERN, check_value, json_is_storable

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]
QueueName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
Attempt = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
MaxAttempts = Annotated[int, msgspec.Meta(ge=1, le=100)]
ErrorText = Annotated[str, msgspec.Meta(max_length=10_000)]
Priority = Annotated[int, msgspec.Meta(ge=-100, le=100)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]
"""An operator's why (storable text, checked with every command's texts)."""
DelaySeconds = Annotated[float, msgspec.Meta(ge=0, le=366 * 86_400)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
Traceparent = Annotated[
    str, msgspec.Meta(pattern=r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
]
"""A W3C ``traceparent`` (version 00), kept as data: the producer's span (ADR 125)."""


class Command(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every command."""


class EnqueueJob(Command, frozen=True, tag="enqueue"):
    customer_id: Name
    queue: QueueName = "default"
    payload: Any = None
    max_attempts: MaxAttempts = 3
    idempotency_key: Name | None = None
    priority: Priority = 0
    run_at: AwareTime | None = None
    delay_seconds: DelaySeconds | None = None
    """Exclusive with ``run_at``; the ledger adds it to its own ``now`` (ADR 100)."""
    traceparent: Traceparent | None = None


class JobCommand(Command, frozen=True):
    """A command addressed to one existing job."""

    job_id: UUID


class ClaimJob(JobCommand, frozen=True, tag="claim"):
    worker_id: Name
    worker_time: datetime | None = None


class RecordHeartbeat(JobCommand, frozen=True, tag="heartbeat"):
    attempt: Attempt
    worker_id: Name
    worker_time: datetime | None = None


class CompleteJob(JobCommand, frozen=True, tag="complete"):
    attempt: Attempt
    worker_id: Name
    result: Any = None
    worker_time: datetime | None = None


class FailJob(JobCommand, frozen=True, tag="fail"):
    attempt: Attempt
    worker_id: Name
    error: ErrorText
    worker_time: datetime | None = None
    error_normalised: bool = False
    """True when the worker made ``error`` storable (:func:`ledger.text.normalise`)."""


class DetectStale(JobCommand, frozen=True, tag="detect_stale"):
    attempt: Attempt
    detected_by: Name


class RedriveJob(JobCommand, frozen=True, tag="redrive"):
    actor: Name
    reason: Reason | None = None
    action_id: Name | None = None


class CancelJob(JobCommand, frozen=True, tag="cancel"):
    """An operator cancels the job: at once, or by asking its running attempt to stop."""

    actor: Name
    reason: Reason | None = None
    action_id: Name | None = None


class ReportCancelled(JobCommand, frozen=True, tag="report_cancelled"):
    """The worker of a cancel-requested attempt stopped its handler."""

    attempt: Attempt
    worker_id: Name
    worker_time: datetime | None = None


class ReleaseJob(JobCommand, frozen=True, tag="release"):
    """The scheduler: a scheduled job is due."""


class RequeueJob(JobCommand, frozen=True, tag="requeue"):
    """An operator makes a scheduled or stuck running job pending now."""

    actor: Name
    reason: Reason | None = None
    action_id: Name | None = None


class RecordQueueDeadLetter(JobCommand, frozen=True, tag="queue_dead_letter"):
    """The transport's dead-letter queue holds the job's message."""

    message_id: Name
    receive_count: Annotated[int, msgspec.Meta(ge=0)]
    message_attempt: Annotated[int, msgspec.Meta(ge=0)] | None = None
    """The job's claims when the message was sent (the message's ``attempt``)."""
    max_receives: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """The queue's configured maximum, when the transport knows it (the reason names it)."""


class RecordAlert(JobCommand, frozen=True, tag="record_alert"):
    """The alert of a dead letter was delivered, or failed for good (``failure`` set)."""

    dead_letter_version: Annotated[int, msgspec.Meta(ge=1)]
    channel: Name
    delivery_id: Name | None = None
    failure: ErrorText | None = None


AnyCommand = (
    EnqueueJob | ClaimJob | RecordHeartbeat | CompleteJob | FailJob | DetectStale | RedriveJob
    | RecordQueueDeadLetter | RecordAlert | CancelJob | ReportCancelled | ReleaseJob | RequeueJob
)
"""The tagged union a boundary decodes."""

class QueueCommand(Command, frozen=True):
    """An operator's command addressed to one queue (``ledger.queue.Queue``)."""

    queue: QueueName
    actor: Name
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class PauseQueue(QueueCommand, frozen=True, tag="pause_queue"):
    pass


class ResumeQueue(QueueCommand, frozen=True, tag="resume_queue"):
    pass


class SetQueueLimit(QueueCommand, frozen=True, tag="set_queue_limit"):
    max_running: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    """The most jobs of the queue in progress at once; ``None`` lifts the cap."""


AnyQueueCommand = PauseQueue | ResumeQueue | SetQueueLimit
"""The queue commands (``JobLedger.control_queue``)."""


class QueueOutcome(msgspec.Struct, frozen=True):
    """The queue's controls after a queue command."""

    queue: str
    paused: bool
    max_running: int | None
    running: int
    version: int
    changed: bool
    """False when the queue was already so (nothing appended)."""


WORKER_REPORTS = (RecordHeartbeat, CompleteJob, FailJob, ReportCancelled)


def check_texts(command: Command) -> None:
    """Refuse a command holding a text the log cannot store, naming the field
    (:class:`~ledger.errors.InvalidText`); payloads and results are checked at any depth."""
    for name in command.__struct_fields__:
        check_value(name, getattr(command, name))


class Outcome(msgspec.Struct, frozen=True):
    """What a command did to its job."""

    job_id: UUID
    status: str
    attempt: int
    version: int
    created: bool = False
    """For enqueue: false when the idempotency key returned an existing job."""
    cancel_requested: bool = False
    """The running attempt was asked to stop: its worker cancels the handler (ADR 100)."""
    traceparent: str | None = None
    """The producer's trace context recorded at enqueue (ADR 125)."""


_C = TypeVar("_C", bound=Command)


def validated(command: _C) -> _C:
    """Enforce the boundary constraints on commands built in-process too: the text rule
    (:func:`check_texts`) and the types' constraints (a decode of the encoded command).
    The text rule is first checked on the encoded command in one scan
    (:func:`~ledger.text.json_is_storable`); only a command it flags is walked field by
    field, to name the field."""
    try:
        encoded = msgspec.json.encode(command)
    except Exception:
        check_texts(command)  # a lone surrogate is refused by name, as before
        raise
    if not json_is_storable(encoded):
        check_texts(command)  # the scan found one: the walk names its field
    if TAG in encoded:
        check_untagged(command)  # ADR 186
    try:
        return msgspec.json.decode(encoded, type=type(command))
    except msgspec.ValidationError as error:
        raise InvalidCommand(str(error)) from None


def tag_of(command: Command) -> str:
    """The command's tag ("heartbeat", "complete", ...), as recorded in refusals."""
    return str(type(command).__struct_config__.tag)
