"""The client's requests without I/O: what each method sends, whether it may be
retried, how the answer is decoded, and the backoff between tries (ADR 121).

:class:`~job_ledger.http.Client` and :class:`~job_ledger.http.AsyncClient` differ only in
how they send a :class:`Call`; everything else is here, once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import msgspec

from adapters.tracing import current_traceparent
from job_ledger.errors import problem_error
from job_ledger.types import ControlOutcome, Enqueued, HistoryEvent, JobRequest, JobState
from ledger.errors import LedgerError

RETRYABLE_STATUS = frozenset({503})


@dataclass(frozen=True)
class Call:
    """One request: ``idempotent`` calls are retried on connection errors and 503."""

    method: str
    path: str
    body: bytes | None = None
    idempotent: bool = False
    job_id: UUID | None = None
    headers: dict[str, str] | None = None
    """Headers of this call only (an enqueue's ``traceparent``, ADR 125)."""


@dataclass(frozen=True)
class Backoff:
    """Capped, jittered exponential backoff: try ``tries`` times in all; before try
    ``n + 1`` wait a uniform draw in ``[d/2, d]`` with ``d = min(cap, base * 2**n)``, or
    the answer's ``Retry-After`` when it is longer (up to ``cap``)."""

    tries: int = 4
    base: float = 0.1
    cap: float = 2.0

    def delay(
        self, retry: int, retry_after: float | None, draw: Callable[[], float] = random.random
    ) -> float:
        ceiling = min(self.cap, self.base * 2.0**retry)
        jittered = ceiling * (0.5 + draw() / 2)
        if retry_after is not None:
            return max(jittered, min(self.cap, retry_after))
        return jittered


class _BatchItem(msgspec.Struct):
    index: int
    job_id: UUID | None = None
    status: str | None = None
    created: bool = False
    code: str | None = None
    detail: str | None = None
    http_status: int | None = None


class _EnqueuedBatch(msgspec.Struct):
    jobs: list[_BatchItem]


class _History(msgspec.Struct):
    events: list[HistoryEvent]


_ENCODER = msgspec.json.Encoder()


def enqueue(job: JobRequest, customer: str | None) -> Call:
    body = _ENCODER.encode(job.body(customer))
    return Call(
        "POST", "/jobs", body, idempotent=job.idempotency_key is not None,
        headers=_trace_headers(),
    )


def enqueue_many(jobs: Sequence[JobRequest], customer: str | None) -> Call:
    body = _ENCODER.encode({"jobs": [job.body(customer) for job in jobs]})
    keyed = bool(jobs) and all(job.idempotency_key is not None for job in jobs)
    return Call("POST", "/jobs/batch", body, idempotent=keyed, headers=_trace_headers())


def _trace_headers() -> dict[str, str] | None:
    """The current span's W3C context, which the ledger records on the job."""
    traceparent = current_traceparent()
    return None if traceparent is None else {"traceparent": traceparent}


def get(job_id: UUID) -> Call:
    return Call("GET", f"/jobs/{job_id}", idempotent=True, job_id=job_id)


def history(job_id: UUID) -> Call:
    return Call("GET", f"/jobs/{job_id}/history", idempotent=True, job_id=job_id)


def cancel(job_id: UUID, reason: str | None) -> Call:
    body = _ENCODER.encode({"reason": reason} if reason is not None else {})
    return Call("POST", f"/jobs/{job_id}/cancel", body, job_id=job_id)


def decode_enqueued(content: bytes) -> Enqueued:
    return msgspec.json.decode(content, type=Enqueued)


def decode_batch(content: bytes) -> list[Enqueued]:
    """Each item's job, in order; an item the ledger refused (an idempotency key used
    for another job) raises its error with ``index`` (the others were enqueued)."""
    items = msgspec.json.decode(content, type=_EnqueuedBatch).jobs
    for item in items:
        if item.code is not None:
            problem = _ENCODER.encode({"detail": item.detail, "code": item.code,
                                       "errors": [{"index": item.index}]})
            raise problem_error(item.http_status or 422, problem)
    return [
        Enqueued(job_id=item.job_id, status=item.status or "", created=item.created)
        for item in items if item.job_id is not None
    ]


def decode_state(content: bytes) -> JobState:
    return msgspec.json.decode(content, type=JobState)


def decode_history(content: bytes) -> list[HistoryEvent]:
    return msgspec.json.decode(content, type=_History).events


def decode_control(content: bytes) -> ControlOutcome:
    return msgspec.json.decode(content, type=ControlOutcome)


def answer_error(call: Call, status: int, content: bytes, retry_after: str | None) -> LedgerError:
    return problem_error(status, content, retry_after=parse_retry_after(retry_after),
                         job_id=call.job_id)


def parse_retry_after(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


def retryable(call: Call, status: int | None) -> bool:
    """A connection error (``status`` None) or a 503 of an idempotent call."""
    return call.idempotent and (status is None or status in RETRYABLE_STATUS)


def poll_delays(start: float = 0.05, cap: float = 1.0) -> Callable[[], float]:
    """:meth:`wait`'s polling: 50 ms, doubling up to 1 s."""
    current = [start / 2]

    def next_delay() -> float:
        current[0] = min(cap, current[0] * 2)
        return current[0]

    return next_delay


def as_uuid(job_id: UUID | str) -> UUID:
    return job_id if isinstance(job_id, UUID) else UUID(str(job_id))


