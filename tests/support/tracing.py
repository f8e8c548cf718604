"""OpenTelemetry's SDK with its in-memory exporter, set up once per test session.

The global tracer provider can be set once per process; ``adapters/tracing`` holds a
proxy tracer that follows it, so every test that wants spans shares one exporter and
clears it first.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER: list[InMemorySpanExporter] = []


def memory_exporter() -> InMemorySpanExporter:
    """The session's in-memory exporter, emptied (installing the SDK provider once)."""
    if not _EXPORTER:
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _EXPORTER.append(exporter)
    _EXPORTER[0].clear()
    return _EXPORTER[0]


def named(spans: Any, name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None
