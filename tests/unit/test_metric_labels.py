"""``/metrics`` labels are bounded: a queue a client made up is counted under ``other``
(a fuzz run made 56 ``jobledger_jobs`` series). Only the configured queues
(``METRICS_QUEUES``, plus ``default``) get a series of their own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from adapters.http.health_body import Check
from adapters.http.metrics import ViewGauges
from adapters.http.ratelimit import Limiter
from adapters.http.wiring import HttpSettings
from ledger.errors import ConfigurationError
from projections.queries.health_metrics import HealthMetrics, QueueHealth


def scrape(queues: list[QueueHealth], allowed: frozenset[str]) -> dict[tuple[str, str], float]:
    figures = HealthMetrics(at=datetime.now(UTC), queues=queues, active_workers=0)
    check = Check(0.0, datetime.now(UTC), 1.0, figures, [], None)
    registry = CollectorRegistry()
    registry.register(ViewGauges(check, Limiter(None), allowed))
    series: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "jobledger_jobs":
                series[(sample.labels["queue"], sample.labels["status"])] = sample.value
    assert generate_latest(registry)
    return series


def test_unknown_queues_are_counted_as_other() -> None:
    queues = [QueueHealth("default", jobs_pending=1), QueueHealth("emails", jobs_pending=2)]
    queues += [QueueHealth(f"fuzz-{n}", jobs_pending=1, jobs_completed=2) for n in range(56)]
    series = scrape(queues, frozenset({"default", "emails"}))
    assert {queue for queue, _ in series} == {"default", "emails", "other"}
    assert series[("default", "pending")] == 1
    assert series[("emails", "pending")] == 2
    assert series[("other", "pending")] == 56
    assert series[("other", "completed")] == 112


def test_metrics_queues_is_read_from_the_environment() -> None:
    settings = HttpSettings.from_env({"METRICS_QUEUES": "emails, reports"})
    assert settings.metrics_queues == frozenset({"default", "emails", "reports"})
    assert HttpSettings().metrics_queues == frozenset({"default"})
    with pytest.raises(ConfigurationError, match="METRICS_QUEUES"):
        HttpSettings.from_env({"METRICS_QUEUES": "emails,other"})
