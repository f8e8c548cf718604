"""Configuration is read once, validated, and names the variable when a value is bad."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.service.settings import Settings
from ledger.errors import ConfigurationError


def test_defaults_are_the_existing_deployments() -> None:
    settings = Settings.from_env({})
    assert settings.stale_threshold == timedelta(minutes=10)
    assert settings.check_interval_seconds == 120
    assert settings.dlq_check_interval_seconds == 300
    assert settings.dlq_alert_threshold == 1
    assert settings.retry_base_delay_seconds == 10
    assert settings.retry_max_delay_seconds == 3600
    assert settings.alert_group_wait_seconds == 30
    assert settings.slack_webhook_url is None
    assert not settings.uses_postgres
    assert settings.sqlite_path == Path("ledger-data/ledger.sqlite3")


def test_fractions_and_overrides_are_accepted() -> None:
    settings = Settings.from_env(
        {
            "STALE_THRESHOLD_MINUTES": "0.05",
            "CHECK_INTERVAL_SECONDS": "0.5",
            "DLQ_ALERT_THRESHOLD": "3",
            "DATABASE_URL": "postgresql://u:p@db:5432/ledger",
            "SLACK_WEBHOOK_URL": "https://hooks.example.invalid/T/B/x",
            "LEDGER_DATA_DIR": "/var/lib/ledger",
            "RETRY_BASE_DELAY_SECONDS": "0",
        }
    )
    assert settings.stale_threshold == timedelta(seconds=3)
    assert settings.check_interval_seconds == 0.5
    assert settings.dlq_alert_threshold == 3
    assert settings.uses_postgres
    assert settings.sqlite_path == Path("/var/lib/ledger/ledger.sqlite3")
    assert settings.retry_policy.base_delay_seconds == 0


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("STALE_THRESHOLD_MINUTES", "ten", "expected a number"),
        ("STALE_THRESHOLD_MINUTES", "0", "positive"),
        ("CHECK_INTERVAL_SECONDS", "-1", "positive"),
        ("CHECK_INTERVAL_SECONDS", "nan", "finite"),
        ("DLQ_CHECK_INTERVAL_SECONDS", "inf", "finite"),
        ("DLQ_ALERT_THRESHOLD", "1.5", "whole number"),
        ("DATABASE_URL", "mysql://x/y", "postgresql"),
        ("SLACK_WEBHOOK_URL", "not a url", "URL"),
        ("RETRY_BASE_DELAY_SECONDS", "-3", "zero or a positive"),
        ("LEDGER_BATCH_MAX", "0", "positive"),
    ],
)
def test_bad_values_fail_naming_the_variable(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}=")
    assert reason in str(caught.value)


def test_retry_cap_below_base_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="RETRY_MAX_DELAY_SECONDS"):
        Settings.from_env({"RETRY_BASE_DELAY_SECONDS": "20", "RETRY_MAX_DELAY_SECONDS": "5"})


def test_sqs_queue_urls_name_a_queue_of_its_own_per_logical_queue() -> None:
    from adapters.service.bootstrap import sqs_config

    settings = Settings.from_env({
        "SQS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/jobs",
        "SQS_QUEUE_URLS": "reports=https://sqs.eu-west-1.amazonaws.com/1/reports, "
                          "e=https://sqs.eu-west-1.amazonaws.com/1/e",
    })
    config = sqs_config(settings, {})
    assert config is not None
    assert config.url_for("reports") == "https://sqs.eu-west-1.amazonaws.com/1/reports"
    assert config.url_for("default") == "https://sqs.eu-west-1.amazonaws.com/1/jobs"
    assert config.urls_for({"e"}) == ["https://sqs.eu-west-1.amazonaws.com/1/e"]


def test_sqs_priority_bands_map_each_priority_to_one_queue() -> None:
    """ADR 100's documented mapping: the highest floor at or below the job's priority; below
    every floor the shared queue; a logical queue of its own ignores priority."""
    from adapters.service.bootstrap import sqs_config

    base = "https://sqs.eu-west-1.amazonaws.com/1/"
    settings = Settings.from_env({
        "SQS_QUEUE_URL": base + "jobs", "SQS_QUEUE_URLS": f"reports={base}reports",
        "SQS_PRIORITY_QUEUE_URLS": f"1={base}high, 50={base}urgent",
    })
    config = sqs_config(settings, {})
    assert config is not None
    table = {-100: "jobs", 0: "jobs", 1: "high", 49: "high", 50: "urgent", 100: "urgent"}
    for priority, queue in table.items():
        assert config.url_for("default", priority) == base + queue
        assert config.url_for("emails", priority) == base + queue
        assert config.url_for("reports", priority) == base + "reports"
    assert config.urls_for(None) == [base + q for q in ("urgent", "high", "jobs", "reports")]
    assert config.urls_for({"reports"}) == [base + "reports"]
    assert config.urls_for({"emails"}) == [base + q for q in ("urgent", "high", "jobs")]


@pytest.mark.parametrize("raw", [
    "high=https://sqs.example/1/h", "101=https://sqs.example/1/h", "5",
    "5=https://sqs.example/1/h,5=https://sqs.example/1/i",
    "5=https://sqs.example/1/h,6=https://sqs.example/1/h", "5=ftp://x/h",
])
def test_bad_sqs_priority_bands_fail_naming_the_variable(raw: str) -> None:
    env = {"SQS_QUEUE_URL": "https://sqs.example/1/q", "SQS_PRIORITY_QUEUE_URLS": raw}
    with pytest.raises(ConfigurationError, match="SQS_PRIORITY_QUEUE_URLS"):
        Settings.from_env(env)
    with pytest.raises(ConfigurationError, match="needs SQS_QUEUE_URL"):
        Settings.from_env({"SQS_PRIORITY_QUEUE_URLS": "5=https://sqs.example/1/h"})


@pytest.mark.parametrize("env", [
    {"SQS_QUEUE_URLS": "e=https://sqs.example/1/e"},  # no default queue
    {"SQS_QUEUE_URL": "https://sqs.example/1/q", "SQS_QUEUE_URLS": "e"},
    {"SQS_QUEUE_URL": "https://sqs.example/1/q", "SQS_QUEUE_URLS": "e=ftp://x/e"},
    {"SQS_QUEUE_URL": "https://sqs.example/1/q", "SQS_QUEUE_URLS": "e=https://a/1,e=https://b/2"},
])
def test_bad_sqs_queue_urls_fail_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="SQS_QUEUE_URLS"):
        Settings.from_env(env)
