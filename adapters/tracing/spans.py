"""The spans of a job's journey (ADR 125): decisions, dispatch, and each attempt.

Every span of a job is a child of the producer's span recorded at enqueue (its
``traceparent``), so the whole journey is one trace: the producer's span, the ledger's
``job.enqueued``, ``job.dispatch``, each ``job.attempt`` (claim to report, heartbeats as
span events, the handler inside it) and the policies' decisions (``job.stale_detected``,
``job.requeued``, ``job.dead_lettered``, ``job.alert_sent``...). A job enqueued without
one starts a trace of its own at each span. Without the extra every function here
returns at once (``otel.TRACER is None``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.tracing import otel
from adapters.tracing.context import parent_context

Attributes = Mapping[str, str | int | float | bool]


def decision_span(
    name: str, job_id: UUID, attempt: int, traceparent: str | None,
    attributes: Attributes | None = None, *, kind: str = "INTERNAL",
    at: datetime | None = None,
) -> None:
    """One instantaneous span: a decision the ledger recorded about the job (now, or
    ``at`` when it was recorded earlier)."""
    tracer = otel.TRACER
    if tracer is None or otel.TRACE is None:
        return
    when = None if at is None else int(at.timestamp() * 1_000_000_000)
    span = tracer.start_span(
        name, context=parent_context(traceparent), kind=getattr(otel.TRACE.SpanKind, kind),
        attributes={"job.id": str(job_id), "job.attempt": attempt, **(attributes or {})},
        start_time=when,
    )
    span.end(end_time=when)


class AttemptTrace:
    """The span of one attempt, from its claim to its report (ended by :meth:`end`)."""

    def __init__(self, span: Any) -> None:
        self._span = span

    def active(self) -> Any:
        """A context manager in which the attempt's span is current (the handler runs
        in it; a plain handler's thread gets it with the copied context)."""
        if otel.TRACE is None:
            return nullcontext()
        return otel.TRACE.use_span(self._span, end_on_exit=False, record_exception=False)

    def heartbeat(self, answer: str) -> None:
        self._span.add_event("heartbeat", {"answer": answer})

    def failed(self, error: BaseException) -> None:
        self._span.record_exception(error)

    def reported(self, status: str) -> None:
        """The ledger's answer to the attempt's report: the job's status after it."""
        self._span.set_attribute("job.status", status)
        if status not in ("completed", "cancelled") and otel.TRACE is not None:
            self._span.set_status(otel.TRACE.Status(otel.TRACE.StatusCode.ERROR, status))

    def end(self) -> None:
        self._span.end()


class _NoAttemptTrace(AttemptTrace):
    def __init__(self) -> None:
        super().__init__(None)

    def active(self) -> Any:
        return nullcontext()

    def heartbeat(self, answer: str) -> None:
        return None

    def failed(self, error: BaseException) -> None:
        return None

    def reported(self, status: str) -> None:
        return None

    def end(self) -> None:
        return None


NO_TRACE: AttemptTrace = _NoAttemptTrace()
"""The attempt trace without the extra (every method does nothing)."""


def start_attempt(
    job_id: UUID, attempt: int, traceparent: str | None, worker_id: str, queue: str
) -> AttemptTrace:
    """Open the span of an attempt just claimed (a consumer span under the producer's)."""
    tracer = otel.TRACER
    if tracer is None or otel.TRACE is None:
        return NO_TRACE
    span = tracer.start_span(
        "job.attempt", context=parent_context(traceparent), kind=otel.TRACE.SpanKind.CONSUMER,
        attributes={"job.id": str(job_id), "job.attempt": attempt, "worker.id": worker_id,
                    "job.queue": queue},
    )
    return AttemptTrace(span)


@contextmanager
def producer_span(name: str, attributes: Attributes) -> Iterator[None]:
    """A producer span around an enqueue made by the client library; its context is the
    ``traceparent`` the job records (current inside the block)."""
    tracer = otel.TRACER
    if tracer is None or otel.TRACE is None:
        yield
        return
    with tracer.start_as_current_span(
        name, kind=otel.TRACE.SpanKind.PRODUCER, attributes=dict(attributes)
    ):
        yield


def dispatched(
    events: Sequence[Any], sent: Sequence[Any], queued: Collection[int] = ()
) -> None:
    """A ``job.dispatch`` span for each enqueue whose message the dispatcher just sent
    (``sent``, the transport's :class:`~ledger.ports.transport.Outgoing`) or the outbox
    wrote in the enqueue's own transaction (``queued``: the events' positions, ADR 151;
    the span is dated at the event, when its queue row was committed)."""
    if otel.TRACER is None:
        return
    sent_ids = {outgoing.message.job_id for outgoing in sent}
    for event in events:
        traceparent = getattr(event.body, "traceparent", None)
        if traceparent is None:
            continue
        job_id = UUID(event.originator_id)
        if event.position in queued:
            decision_span("job.dispatch", job_id, 0, traceparent, kind="PRODUCER", at=event.at)
        elif job_id in sent_ids:
            decision_span("job.dispatch", job_id, 0, traceparent, kind="PRODUCER")
