"""The HTTP API's request and response bodies, and the one strict decoder per request type.

Request bodies are decoded by msgspec, strictly (no ``"1"`` for ``1``), with unknown fields
refused and the same limits as the ledger's commands (:mod:`ledger.commands`); the sizes of
whole bodies are capped by the application (``MAX_BODY_BYTES``), their nesting by
:mod:`adapters.http.decoding` (``MAX_DEPTH``), which also takes ``17.0`` for an integer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request

from adapters.http.decoding import decode_body
from adapters.http.problems import ApiError
from ledger.commands import (
    Attempt,
    AwareTime,
    DelaySeconds,
    ErrorText,
    MaxAttempts,
    Name,
    Priority,
    QueueName,
)
from ledger.errors import InvalidText
from ledger.text import check_value

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body accepted (413 beyond it)."""
MAX_BATCH = 1000
"""The most jobs one ``POST /heartbeats`` or ``POST /dlq/redrive`` may name."""

UNCOMPRESSED = "uncompressed"
"""A route's ``opt`` key: its answers are a few hundred bytes at most, so the compression
middleware is bypassed for it, not run to find a short answer (ADR 198: it read the
headers of every request and made a gzip compressor for every client that accepts gzip)."""

T = TypeVar("T")

WorkerTime = Annotated[
    datetime,
    msgspec.Meta(
        description="The worker's clock when it sent the request (RFC 3339), kept as reported.",
        extra_json_schema={"format": "date-time"},
    ),
]


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of request bodies: unknown fields are refused."""


class EnqueueRequest(Body, frozen=True):
    """Enqueue a job; the same ``idempotency_key`` (per customer) returns the same job."""

    customer_id: Name
    queue: QueueName = "default"
    payload: Any = None
    max_attempts: MaxAttempts = 3
    idempotency_key: Name | None = None
    priority: Priority = 0
    """-100..100: the local queue receives higher first (FIFO within a priority)."""
    run_at: AwareTime | None = None
    """Not before this time (with a zone): the job is ``scheduled`` until then."""
    delay_seconds: DelaySeconds | None = None
    """Not before this many seconds from now (exclusive with ``run_at``)."""


class ClaimRequest(Body, frozen=True):
    worker_id: Name
    worker_time: WorkerTime | None = None


class HeartbeatRequest(Body, frozen=True):
    worker_id: Name
    attempt: Attempt
    worker_time: WorkerTime | None = None


class CompleteRequest(Body, frozen=True):
    worker_id: Name
    attempt: Attempt
    result: Any = None
    worker_time: WorkerTime | None = None


class FailRequest(Body, frozen=True):
    worker_id: Name
    attempt: Attempt
    error: ErrorText
    worker_time: WorkerTime | None = None
    error_normalised: bool = False
    """The worker replaced code points of ``error`` the ledger cannot store, or cut it."""


class CancelledRequest(Body, frozen=True):
    """A worker says the handler of a cancel-requested attempt stopped."""

    worker_id: Name
    attempt: Attempt
    worker_time: WorkerTime | None = None


class BatchedHeartbeat(Body, frozen=True):
    job_id: UUID
    attempt: Attempt


class HeartbeatBatchRequest(Body, frozen=True):
    """Heartbeats of one worker for several jobs, each answered on its own."""

    worker_id: Name
    jobs: Annotated[list[BatchedHeartbeat], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
    worker_time: WorkerTime | None = None


class RedriveRequest(Body, frozen=True):
    """Redrive the named dead-lettered jobs, or all of them (up to ``MAX_BATCH`` a call)."""

    job_ids: Annotated[list[UUID], msgspec.Meta(max_length=MAX_BATCH)] | None = None
    all: bool = False
    dry_run: bool = False


# -- responses ------------------------------------------------------------------------------


class Enqueued(msgspec.Struct, frozen=True):
    job_id: UUID
    status: str
    created: bool
    """False when the idempotency key named a job enqueued before."""


class AttemptState(msgspec.Struct, frozen=True):
    """A job's status and current attempt after a worker's request."""

    job_id: UUID
    attempt: int
    status: str
    cancel_requested: bool = False
    """An operator cancelled the running job: the worker stops the handler and reports
    ``POST /jobs/{id}/cancelled`` (ADR 100)."""


class ClaimedAttempt(msgspec.Struct, frozen=True):
    """The attempt a claim opened, with the job's payload (what the worker runs)."""

    job_id: UUID
    attempt: int
    status: str
    payload: Any = None
    traceparent: str | None = None
    """The producer's W3C trace context recorded at enqueue (ADR 125)."""


class HeartbeatResult(msgspec.Struct, frozen=True, omit_defaults=True):
    job_id: UUID
    attempt: int
    result: str
    """``recorded``, ``superseded`` (409: that attempt is no longer current, recorded as a
    refusal), ``not_found`` (404) or ``rejected`` (another refusal, see ``detail``)."""
    status: int
    """The status code the single-job endpoint would have answered."""
    job_status: str | None = None
    detail: str | None = None
    cancel_requested: bool = False
    """Recorded, and an operator cancelled the job: stop the handler, report cancelled."""


class HeartbeatBatchResult(msgspec.Struct, frozen=True):
    worker_id: str
    recorded: int
    refused: int
    results: list[HeartbeatResult]


class HistoryEvent(msgspec.Struct, frozen=True):
    type: str
    version: int
    recorded_at: str
    data: dict[str, Any]


class History(msgspec.Struct, frozen=True):
    job_id: UUID
    events: list[HistoryEvent]


class RedriveOutcome(msgspec.Struct, frozen=True, omit_defaults=True):
    job_id: UUID
    result: str
    """``redriven``, ``would_redrive`` (dry run), ``not_found`` or ``not_dead_lettered``."""
    detail: str | None = None


class RedriveResult(msgspec.Struct, frozen=True):
    dry_run: bool
    redriven: int
    results: list[RedriveOutcome]


# -- decoding ---------------------------------------------------------------------------------

_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decoder(body_type: type[T]) -> msgspec.json.Decoder[T]:
    """The strict decoder of ``body_type`` (one per type, made once)."""
    found = _DECODERS.get(body_type)
    if found is None:
        found = _DECODERS[body_type] = msgspec.json.Decoder(body_type)
    return found


async def read_body(request: Request[Any, Any, Any], body_type: type[T]) -> T:
    """The request's body as ``body_type``, or a 4xx problem (never anything appended)."""
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415, f"the body must be application/json, not {media or 'empty'}",
            code="unsupported_media_type",
        )
    raw = await request.body()
    body = decode_body(raw, decoder(body_type), body_type)
    check_texts(body)
    return body


def check_texts(body: object) -> None:
    """422 ``invalid_text`` naming the field when a text of ``body`` (payloads and results
    at any depth) holds a code point the ledger cannot store (:mod:`ledger.text`)."""
    for name in getattr(body, "__struct_fields__", ()):
        try:
            check_value(name, getattr(body, name))
        except InvalidText as error:
            raise ApiError(422, str(error), code=error.code) from None
