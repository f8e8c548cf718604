"""Every condition the ledger reports, one class each.

The docstring of each class is its default message; the HTTP layer maps the classes to
status codes and the CLI prints ``str(error)`` on one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NamedTuple


class LedgerError(Exception):
    """The ledger refused the request."""

    #: A stable machine-readable name for problem+json bodies and logs.
    code: ClassVar[str] = "ledger_error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip().splitlines()[0]
        super().__init__(self.message)


class ConfigurationError(LedgerError):
    """The configuration is invalid."""

    code = "configuration_error"

    def __init__(self, variable: str, value: str, reason: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"{variable}={value!r} is invalid: {reason}")


class StoreError(LedgerError):
    """The database failed."""

    code = "store_error"


class StoreUnavailable(StoreError):
    """The database could not be reached; try again shortly."""

    code = "store_unavailable"


class JobArchived(LedgerError):
    """The job was archived: it is read-only (docs/adr/0110-archive-segments.md)."""

    code = "job_archived"

    def __init__(self, job_id: object) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} is archived: it can be read, not changed")


class InvalidCommand(LedgerError):
    """The command is malformed."""

    code = "invalid_command"


class InvalidText(InvalidCommand):
    """A text holds a code point the ledger cannot store (docs/adr/0060-storable-text.md)."""

    code = "invalid_text"

    def __init__(self, field: str, index: int, code_point: int) -> None:
        self.field = field
        self.index = index
        self.code_point = code_point
        super().__init__(
            f"{field}: U+{code_point:04X} at character {index} cannot be stored (allowed: "
            "tab, newline, carriage return and U+0020..U+10FFFF except surrogates, "
            "U+FFFE and U+FFFF)"
        )


class ReservedShape(InvalidCommand):
    """An object with exactly the keys ``_type_`` and ``_data_`` is the log's own tag for a
    typed value: it would be read back as another type, or not at all (ADR 186)."""

    code = "reserved_shape"

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            f"{field}: an object with exactly the keys _type_ and _data_ is reserved "
            "(the log's tag for typed values)"
        )


class JobNotFound(LedgerError):
    """No job has this id."""

    code = "job_not_found"

    def __init__(self, job_id: object) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id}")


class IllegalTransition(LedgerError):
    """The job's status does not allow this transition."""

    code = "illegal_transition"

    def __init__(self, job_id: object, status: str, action: str) -> None:
        self.job_id = job_id
        self.status = status
        self.action = action
        super().__init__(f"job {job_id} is {status}: cannot {action}")


class AttemptSuperseded(LedgerError):
    """The attempt named by the report is no longer current."""

    code = "attempt_superseded"

    def __init__(self, job_id: object, attempt: int, current_attempt: int, status: str) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.current_attempt = current_attempt
        self.status = status
        super().__init__(
            f"job {job_id}: attempt {attempt} is superseded "
            f"(current attempt {current_attempt}, status {status})"
        )


class UnknownAttempt(LedgerError):
    """The report names an attempt that was never opened."""

    code = "unknown_attempt"

    def __init__(self, job_id: object, attempt: int, current_attempt: int) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.current_attempt = current_attempt
        super().__init__(
            f"job {job_id}: attempt {attempt} was never opened "
            f"(latest attempt is {current_attempt})"
        )


class JobNotDue(LedgerError):
    """The job is waiting for its retry delay and cannot be claimed yet."""

    code = "job_not_due"

    def __init__(self, job_id: object, not_before: str) -> None:
        self.job_id = job_id
        self.not_before = not_before
        super().__init__(f"job {job_id} cannot be claimed before {not_before}")


class NotStale(LedgerError):
    """The job is not stale: it moved on or heartbeated since it was observed."""

    code = "not_stale"

    def __init__(self, job_id: object, reason: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} is not stale: {reason}")


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used for a different job request."""

    code = "idempotency_conflict"

    def __init__(self, customer_id: str, key: str) -> None:
        self.customer_id = customer_id
        self.key = key
        super().__init__(
            f"idempotency key {key!r} of customer {customer_id!r} was already used "
            "with a different queue, payload or max_attempts"
        )


class ConcurrencyExhausted(LedgerError):
    """The job kept changing under the command; it was not applied."""

    code = "concurrency_exhausted"


class QueuePaused(LedgerError):
    """The job's queue is paused; claim it after the queue is resumed."""

    code = "queue_paused"

    def __init__(self, queue: str) -> None:
        self.queue = queue
        super().__init__(f"queue {queue!r} is paused; claim its jobs after it is resumed")


class QueueAtCapacity(LedgerError):
    """The job's queue runs as many jobs as its cap allows; claim it after one ends."""

    code = "queue_at_capacity"

    def __init__(self, queue: str, max_running: int) -> None:
        self.queue = queue
        self.max_running = max_running
        super().__init__(
            f"queue {queue!r} runs its maximum of {max_running} jobs; claim after one ends"
        )


# -- transport ----------------------------------------------------------------------------


class BatchFailure(NamedTuple):
    """One entry of a batch that was not sent."""

    entry: int
    """The entry's position in the batch."""
    code: str
    reason: str


class TransportError(LedgerError):
    """The job transport failed."""

    code = "transport_error"


class TransportUnavailable(TransportError):
    """The queue could not be reached."""

    code = "transport_unavailable"


class TransportTimeout(TransportError):
    """The queue did not answer in time."""

    code = "transport_timeout"


class TransportAccessDenied(TransportError):
    """The queue refused the credentials or their permissions."""

    code = "transport_access_denied"


class TransportThrottled(TransportError):
    """The queue service is throttling requests; try again later."""

    code = "transport_throttled"


class QueueNotFound(TransportError):
    """The queue does not exist."""

    code = "queue_not_found"


class DeadLetterQueueNotConfigured(TransportError):
    """No dead-letter queue is configured: set SQS_DLQ_URL or a RedrivePolicy on the queue."""

    code = "dead_letter_queue_not_configured"


class ReceiptInvalid(TransportError):
    """The receipt is no longer valid: the message was deleted, dead-lettered or received again."""

    code = "receipt_invalid"


class InvalidTransportRequest(TransportError):
    """The transport request is invalid."""

    code = "invalid_transport_request"


class MalformedMessage(TransportError):
    """The queue message is not a valid job message."""

    code = "malformed_message"


class TransportRequestFailed(TransportError):
    """The queue service refused the request."""

    code = "transport_request_failed"


class BatchSendFailed(TransportError):
    """Some messages of a batch were not sent."""

    code = "batch_send_failed"

    def __init__(self, failures: Sequence[BatchFailure], sent: Sequence[str | None]) -> None:
        self.failures = list(failures)
        #: The message id of every entry, in order; ``None`` for the entries that failed.
        self.sent = list(sent)
        detail = "; ".join(f"#{f.entry}: {f.code}: {f.reason}" for f in self.failures[:5])
        more = f" (and {len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        super().__init__(
            f"{len(self.failures)} of {len(self.sent)} messages were not sent: {detail}{more}"
        )


class AlreadyAlerted(LedgerError):
    """The dead letter's alert is already recorded."""

    code = "already_alerted"

    def __init__(self, job_id: object, dead_letter_version: int) -> None:
        self.job_id = job_id
        self.dead_letter_version = dead_letter_version
        super().__init__(f"job {job_id}: the dead letter at v{dead_letter_version} was alerted")
