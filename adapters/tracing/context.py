"""W3C trace context as the ledger stores it: a ``traceparent`` string (ADR 125).

Only version ``00`` is produced and stored; a header of a later version is read as its
first four fields (as the W3C recommendation asks); anything malformed, or with an
all-zero trace or span id, is ignored, never refused: tracing must not fail an enqueue.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.tracing import otel

_HEADER = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
MAX_HEADER = 512


def parse_traceparent(header: str | None) -> str | None:
    """A valid ``traceparent`` header as the version-00 string the job keeps, else None."""
    if not header or len(header) > MAX_HEADER:
        return None
    found = _HEADER.match(header.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return f"00-{trace_id}-{span_id}-{flags}"


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id a stored ``traceparent`` names (for log lines)."""
    return traceparent[3:35] if traceparent else None


def current_traceparent() -> str | None:
    """The current span's context as a ``traceparent``; None without one (or the extra)."""
    trace = otel.TRACE
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format_context(context)


def format_context(context: Any) -> str:
    """A span context as a ``traceparent`` string."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def parent_context(traceparent: str | None) -> Any:
    """An OpenTelemetry ``Context`` whose parent is ``traceparent`` (None: a new trace);
    the last few are kept (the jobs of one producer's batch share theirs)."""
    trace = otel.TRACE
    if trace is None or traceparent is None:
        return None
    found = _PARENTS.get(traceparent)
    if found is None:
        if len(_PARENTS) >= MAX_PARENTS:
            _PARENTS.clear()
        found = _PARENTS[traceparent] = _context(trace, traceparent)
    return found


MAX_PARENTS = 1024
_PARENTS: dict[str, Any] = {}


def _context(trace: Any, traceparent: str) -> Any:
    _, trace_id, span_id, flags = traceparent.split("-")
    remote = trace.SpanContext(
        trace_id=int(trace_id, 16), span_id=int(span_id, 16), is_remote=True,
        trace_flags=trace.TraceFlags(int(flags, 16)),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote))
