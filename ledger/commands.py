"""Commands the ledger accepts and the results it returns.

Commands are msgspec Structs in one tagged union, so every boundary (HTTP bodies, queue
messages, the CLI) decodes them with one strict, typed decoder and the same limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from ledger.text import NAME_PATTERN, check_value

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]
QueueName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
Attempt = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
MaxAttempts = Annotated[int, msgspec.Meta(ge=1, le=100)]
ErrorText = Annotated[str, msgspec.Meta(max_length=10_000)]


class Command(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every command."""


class EnqueueJob(Command, frozen=True, tag="enqueue"):
    customer_id: Name
    queue: QueueName = "default"
    payload: Any = None
    max_attempts: MaxAttempts = 3
    idempotency_key: Name | None = None


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
    | RecordQueueDeadLetter | RecordAlert
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


WORKER_REPORTS = (RecordHeartbeat, CompleteJob, FailJob)


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
