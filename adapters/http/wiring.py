"""Wiring of the HTTP API from the composition root's container, and its own settings.

The API's settings come from the environment like the rest (bad values fail at start-up
naming the variable):

| variable | default | meaning |
|---|---|---|
| ``RATE_LIMIT_WORKER_PER_MINUTE`` | 600000 | the ``worker`` preset (claims, heartbeats, reports) |
| ``RATE_LIMIT_SERVICE_PER_MINUTE`` | 60000 | the ``service`` preset (enqueue, job reads) |
| ``HEALTH_STALE_UNHEALTHY`` | 5 | stale jobs at which ``/health`` answers 503 |
| ``HEALTH_MAX_LAG`` | 10000 | events a view may lag before ``/health`` says degraded |
| ``METRICS_QUEUES`` | ``default`` | queues with own ``/metrics`` series; the rest: ``other`` |
| ``CONSOLE_SECRET`` | unset | signs the console's sessions (unset: a secret kept in the data dir) |
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.http.access import Access
from adapters.http.app import HttpParts
from adapters.http.console.wiring import console_of
from adapters.http.health import HealthMonitor
from adapters.http.health_asof import HealthAsOf
from adapters.http.metrics import OTHER_QUEUES
from adapters.http.ratelimit import CounterStore, Limiter, default_presets
from adapters.http.services import HealthSettings, JobReads, ReadPool, Uptime, Writer
from adapters.http.tallies import TallyReporter
from adapters.service.archive_replay import archive_horizon
from adapters.service.backend import Backend
from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import Container, sqs_config, utc_now
from adapters.service.keys import KeyVerifier
from adapters.service.queue_claims import queue_claims_for
from ledger.access import KeyStore
from ledger.errors import ConfigurationError
from ledger.tally import TallyCounter


@dataclass(frozen=True)
class HttpSettings:
    worker_per_minute: int = 600_000
    service_per_minute: int = 60_000
    stale_unhealthy: int = 5
    max_lag: int = 10_000
    metrics_queues: frozenset[str] = frozenset({"default"})
    console_secret: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpSettings:
        names = {
            "worker_per_minute": "RATE_LIMIT_WORKER_PER_MINUTE",
            "service_per_minute": "RATE_LIMIT_SERVICE_PER_MINUTE",
            "stale_unhealthy": "HEALTH_STALE_UNHEALTHY",
            "max_lag": "HEALTH_MAX_LAG",
        }
        values: dict[str, Any] = {}
        for field, variable in names.items():
            raw = env.get(variable, "").strip()
            if raw:
                values[field] = _whole(variable, raw)
        raw = env.get("METRICS_QUEUES", "").strip()
        if raw:
            values["metrics_queues"] = _queue_labels("METRICS_QUEUES", raw)
        values["console_secret"] = env.get("CONSOLE_SECRET") or None
        return cls(**values)


def _queue_labels(variable: str, raw: str) -> frozenset[str]:
    """``a,b`` as the label set ``{default, a, b}``; ``other`` names the rest."""
    names = {name.strip() for name in raw.split(",") if name.strip()}
    if OTHER_QUEUES in names:
        raise ConfigurationError(variable, raw, f"{OTHER_QUEUES!r} labels every other queue")
    return frozenset(names | {"default"})


def _whole(variable: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(variable, raw, "expected a whole number such as 100") from None
    if value < 1:
        raise ConfigurationError(variable, raw, "must be at least 1")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_allowed(backend: Backend, host: str) -> bool:
    """Keys may be skipped only on the embedded default, listening on loopback only."""
    return backend.open_without_keys and is_loopback(host)


def build_http(
    container: Container,
    *,
    host: str = "127.0.0.1",
    http: HttpSettings | None = None,
    keys: KeyStore | None = None,
    counters: CounterStore | None = None,
    ui: bool = True,
) -> HttpParts:
    """The API's parts over the container's ledger (tables already migrated)."""
    settings = container.settings
    http = http or HttpSettings()
    presets = default_presets(http.worker_per_minute, http.service_per_minute)
    limiter = Limiter(
        counters if counters is not None else container.backend.counter_store(),
        presets,
        tallies=TallyCounter(),
    )
    keys = keys if keys is not None else container.backend.key_store()
    verifier = KeyVerifier(keys)
    views = ReadPool(container.backend.open_views, size=4)
    # no wait for returning callers (ADR 213): HTTP clients come back slower than a commit
    batch = BatchWriter(
        container.ledger, utc_now, max_batch=settings.ledger_batch_max, return_wait=0.0
    )
    judged_by = HealthSettings(
        settings.stale_threshold, http.stale_unhealthy, http.max_lag, http.metrics_queues
    )
    health_views = ReadPool(container.backend.open_views, size=1)
    access = Access(verifier, open_allowed(container.backend, host))
    return HttpParts(
        writer=Writer(batch, limiter),
        jobs=JobReads(views, container.ledger),
        views=views,
        limiter=limiter,
        access=access,
        monitor=HealthMonitor(health_views, limiter, utc_now, judged_by, Uptime()),
        tallies=TallyReporter(limiter, container.ledger, utc_now),
        health_as_of=HealthAsOf(views, container.backend.checkpoints, judged_by,
                                lambda: archive_horizon(container.backend)),
        console=console_of(container, keys, access, http.console_secret) if ui else None,
        claims=(queue_claims_for(container.ledger, batch, utc_now)
                if sqs_config(settings, {}) is None else None),
    )
