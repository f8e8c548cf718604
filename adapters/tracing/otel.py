"""The one guarded import of OpenTelemetry (the optional ``[otel]`` extra, ADR 125).

Without ``opentelemetry-api`` installed, :data:`TRACE` is ``None`` and every hook in
``adapters/tracing`` returns at its first line: nothing else is imported, nothing is
allocated per job. With it installed, the global tracer provider decides where spans
go (none configured: OpenTelemetry's own non-recording spans).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

INSTRUMENTATION = "job-ledger"


def _load() -> tuple[ModuleType | None, Any]:
    try:
        trace = importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None, None
    return trace, trace.get_tracer(INSTRUMENTATION)


TRACE, TRACER = _load()
"""``opentelemetry.trace`` and this package's tracer (a proxy that follows the global
provider set later), or ``None`` twice without the extra."""


def enabled() -> bool:
    """Whether spans can be made at all (the extra is installed)."""
    return TRACE is not None
