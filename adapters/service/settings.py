"""Configuration: read once from a mapping (the environment), validated, immutable.

The existing deployment's variable names are kept. Numeric values accept fractions
(``STALE_THRESHOLD_MINUTES=0.05``) so tests and demos can run the real policies on short
clocks. A bad value raises :class:`~ledger.errors.ConfigurationError` naming the variable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from adapters.service.ages import parse_age
from ledger.errors import ConfigurationError
from ledger.policies.retry import RetryPolicy

_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}")
"""A logical queue's name, as :data:`ledger.commands.QueueName` allows it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting job-ledger reads, with the deployment's defaults."""

    stale_threshold_minutes: float = 10.0
    check_interval_seconds: float = 120.0
    dlq_check_interval_seconds: float = 300.0
    dlq_alert_threshold: int = 1
    slack_webhook_url: str | None = None
    database_url: str | None = None
    sqs_queue_url: str | None = None
    sqs_dlq_url: str | None = None
    sqs_queue_urls: tuple[tuple[str, str], ...] = ()
    """``SQS_QUEUE_URLS=reports=URL,emails=URL``: logical queues with an SQS queue of
    their own; every other queue's messages go to ``SQS_QUEUE_URL`` (ADR 70)."""
    sqs_priority_queue_urls: tuple[tuple[int, str], ...] = ()
    """``SQS_PRIORITY_QUEUE_URLS=50=URL,1=URL``: priority bands of ``SQS_QUEUE_URL``
    (ADR 100); a job of priority at least a floor goes to that band's queue (the highest
    floor that fits), below every floor to ``SQS_QUEUE_URL``."""
    retry_base_delay_seconds: float = 10.0
    retry_max_delay_seconds: float = 3600.0
    alert_group_wait_seconds: float = 30.0
    schedule_lead_seconds: float = 10.0
    """How far ahead of its time the schedule ticker fires a tick, enqueueing its job
    scheduled for the tick's time (ADR 130); 0 fires ticks when due."""
    ledger_data_dir: Path = Path("ledger-data")
    ledger_snapshot_interval: int = 100
    ledger_batch_max: int = 500
    checkpoint_every_events: int = 100_000
    """Take a checkpoint of a view once it moved this far past its newest (ADR 90)."""
    checkpoint_keep: int = 10
    """Checkpoints kept per view (the newest always)."""
    archive_older_than: timedelta | None = None
    """``ARCHIVE_OLDER_THAN=30d``: ``ledger serve`` archives jobs that ended longer ago
    (ADR 110); unset, it never archives."""
    archive_url: str | None = None
    """``s3://bucket/prefix``: where segments go; unset, ``LEDGER_DATA_DIR/archive``."""
    archive_min_events: int = 50_000
    """``ledger serve``'s archive round records a segment only when at least this many
    events would move, or when the oldest job due waited ``ARCHIVE_MAX_WAIT`` past the
    cut (segments that do not pile up; ADR 110)."""
    archive_max_wait: timedelta = timedelta(days=1)

    @property
    def stale_threshold(self) -> timedelta:
        return timedelta(minutes=self.stale_threshold_minutes)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_base_delay_seconds, self.retry_max_delay_seconds)

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    @property
    def sqlite_path(self) -> Path:
        return self.ledger_data_dir / "ledger.sqlite3"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every setting; unset or empty variables take defaults."""
        values: dict[str, object] = {}
        for field in fields(cls):
            name = field.name.upper()
            raw = env.get(name, "").strip()
            if raw == "":
                continue
            values[field.name] = _PARSERS[field.name](name, raw)
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.sqs_queue_urls and settings.sqs_queue_url is None:
            raise ConfigurationError(
                "SQS_QUEUE_URLS", env.get("SQS_QUEUE_URLS", ""), "needs SQS_QUEUE_URL as well"
            )
        if settings.sqs_priority_queue_urls and settings.sqs_queue_url is None:
            raise ConfigurationError(
                "SQS_PRIORITY_QUEUE_URLS", env.get("SQS_PRIORITY_QUEUE_URLS", ""),
                "needs SQS_QUEUE_URL as well",
            )
        if settings.retry_max_delay_seconds < settings.retry_base_delay_seconds:
            raise ConfigurationError(
                "RETRY_MAX_DELAY_SECONDS",
                str(settings.retry_max_delay_seconds),
                "must not be smaller than RETRY_BASE_DELAY_SECONDS",
            )
        return settings


def _positive_number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(name, raw, "expected a number such as 10 or 0.5") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(name, raw, "must be a positive, finite number")
    return value


def _non_negative_number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(name, raw, "expected a number such as 10 or 0.5") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(name, raw, "must be zero or a positive, finite number")
    return value


def _lead_seconds(name: str, raw: str) -> float:
    """A schedule's lead: 0 to 300 s (a longer one would fire minutes of ticks ahead)."""
    value = _non_negative_number(name, raw)
    if value > 300:
        raise ConfigurationError(name, raw, "must be at most 300 seconds")
    return value


def _positive_whole(name: str, raw: str) -> int:
    value = _positive_number(name, raw)
    if value != int(value):
        raise ConfigurationError(name, raw, "must be a whole number")
    return int(value)


def _url(schemes: tuple[str, ...]) -> Callable[[str, str], object]:
    def parse(name: str, raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not (parts.netloc or parts.path.strip("/")):
            raise ConfigurationError(name, raw, f"expected a {' or '.join(schemes)} URL")
        return raw

    return parse


def _queue_urls(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """``queue=URL,queue=URL``: each logical queue once, each URL an SQS queue's."""
    url = _url(("https", "http"))
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        queue, equals, target = (part.strip() for part in item.partition("="))
        if not equals or not _QUEUE_NAME.fullmatch(queue) or queue in pairs:
            raise ConfigurationError(name, raw, "expected queue=URL pairs separated by commas")
        pairs[queue] = str(url(name, target))
    return tuple(sorted(pairs.items()))


def _priority_urls(name: str, raw: str) -> tuple[tuple[int, str], ...]:
    """``FLOOR=URL,FLOOR=URL``: each floor a priority (-100..100) once, each URL once."""
    url = _url(("https", "http"))
    bands: dict[int, str] = {}
    for item in raw.split(","):
        floor, equals, target = (part.strip() for part in item.partition("="))
        try:
            value = int(floor)
        except ValueError:
            value = None
        if not equals or value is None or not -100 <= value <= 100 or value in bands:
            raise ConfigurationError(
                name, raw, "expected PRIORITY=URL pairs (priority -100..100) separated by commas"
            )
        bands[value] = str(url(name, target))
    if len(set(bands.values())) < len(bands):
        raise ConfigurationError(name, raw, "each band needs an SQS queue of its own")
    return tuple(sorted(bands.items(), reverse=True))


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


_PARSERS: dict[str, Callable[[str, str], object]] = {
    "stale_threshold_minutes": _positive_number,
    "check_interval_seconds": _positive_number,
    "dlq_check_interval_seconds": _positive_number,
    "dlq_alert_threshold": _positive_whole,
    "slack_webhook_url": _url(("https", "http")),
    "database_url": _url(("postgresql", "postgres")),
    "sqs_queue_url": _url(("https", "http")),
    "sqs_dlq_url": _url(("https", "http")),
    "sqs_queue_urls": _queue_urls,
    "sqs_priority_queue_urls": _priority_urls,
    "retry_base_delay_seconds": _non_negative_number,
    "schedule_lead_seconds": _lead_seconds,
    "retry_max_delay_seconds": _non_negative_number,
    "alert_group_wait_seconds": _non_negative_number,
    "ledger_data_dir": _path,
    "ledger_snapshot_interval": _positive_whole,
    "ledger_batch_max": _positive_whole,
    "checkpoint_every_events": _positive_whole,
    "checkpoint_keep": _positive_whole,
    "archive_older_than": parse_age,
    "archive_url": _url(("s3",)),
    "archive_min_events": _positive_whole,
    "archive_max_wait": parse_age,
}
