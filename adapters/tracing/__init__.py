"""Tracing and decision logs (ADR 125): OpenTelemetry spans of a job's journey when the
``[otel]`` extra is installed, and structured decision log lines always.

One package, called from the existing paths with small hooks: the HTTP API and the
client library capture the producer's ``traceparent`` (``context.py``), the places that
execute commands call :func:`observe` (``decisions.py``), the dispatcher calls
:func:`dispatched`, the worker SDK opens an :class:`AttemptTrace` per claim
(``spans.py``), and the commands set logging up with :func:`configure_logging`
(``logs.py``). Without the extra (``otel.py``) the hooks do nothing.
"""

from adapters.tracing.context import current_traceparent, parse_traceparent, trace_id_of
from adapters.tracing.decisions import decision_extra, observe, observe_queue
from adapters.tracing.logs import configure_logging, log_format
from adapters.tracing.spans import (
    NO_TRACE,
    AttemptTrace,
    decision_span,
    dispatched,
    producer_span,
    start_attempt,
)

__all__ = [
    "NO_TRACE",
    "AttemptTrace",
    "configure_logging",
    "current_traceparent",
    "decision_extra",
    "decision_span",
    "dispatched",
    "log_format",
    "observe",
    "observe_queue",
    "parse_traceparent",
    "producer_span",
    "start_attempt",
    "trace_id_of",
]
