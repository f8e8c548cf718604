"""Prometheus metrics of this process, in one registry every part can import.

The counters are incremented where the thing happens: the HTTP API counts heartbeats and
limiter refusals, the policies count stale detections, requeues, dead letters and alerts
(``from adapters.service.metrics import ALERTS_SENT; ALERTS_SENT.inc()``). Gauges whose truth is
in the database (jobs by status, projection lag) are not kept here: ``GET /metrics`` reads
them from the views when it is scraped (:mod:`adapters.http.metrics`).

Each process has its own counters (Prometheus sums them across scrape targets); several
worker processes behind one port would need prometheus-client's multiprocess mode, which
``ledger serve`` does not use (it runs one process per port).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only add noise to every scrape

REGISTRY = CollectorRegistry()
"""The registry ``GET /metrics`` exposes (process, platform and GC metrics included)."""
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

HEARTBEATS = Counter(
    "jobledger_heartbeats",
    "Heartbeats reported to the ledger, by result (recorded, refused, rejected).",
    ["result"],
    registry=REGISTRY,
)
STALE_DETECTIONS = Counter(
    "jobledger_stale_detections",
    "Jobs the stale policy found without a heartbeat for longer than the threshold.",
    registry=REGISTRY,
)
REQUEUES = Counter(
    "jobledger_requeues",
    "Jobs requeued (after a failure or a stale detection), by reason.",
    ["reason"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "jobledger_dead_letters",
    "Jobs dead-lettered (attempts exhausted, or found in the dead-letter queue).",
    registry=REGISTRY,
)
ALERTS_SENT = Counter(
    "jobledger_alerts_sent",
    "Dead-letter alerts delivered (to Slack, or logged when no webhook is set).",
    registry=REGISTRY,
)
ALERTS_FAILED = Counter(
    "jobledger_alerts_failed",
    "Dead-letter alert deliveries that failed (each failed try counts once).",
    registry=REGISTRY,
)
RATE_LIMIT_DECISIONS = Counter(
    "jobledger_rate_limit_decisions",
    "Rate-limiter decisions, by preset, result (admitted, refused) and counter source.",
    ["preset", "result", "source"],
    registry=REGISTRY,
)
RATE_LIMIT_STATEMENTS = Counter(
    "jobledger_rate_limit_statements",
    "Statements the rate limiter sent to its database; decisions over statements is how "
    "many requests one statement decided (ADR 198).",
    registry=REGISTRY,
)
RATE_LIMIT_FALLBACKS = Counter(
    "jobledger_rate_limit_fallbacks",
    "Times the rate limiter fell back to in-memory counters (database unreachable).",
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "jobledger_http_request_duration_seconds",
    "HTTP request latency, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
GC_PAUSES = Histogram(
    "jobledger_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation (they stop every thread).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    registry=REGISTRY,
)

_gc_started = [0.0]


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        GC_PAUSES.labels(str(info.get("generation", "?"))).observe(
            time.perf_counter() - _gc_started[0]
        )


gc.callbacks.append(_time_gc)
