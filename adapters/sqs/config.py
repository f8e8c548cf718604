"""Where the SQS queues are and how long to wait for them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

SQS_MAX_DELAY_SECONDS: Final = 900
"""SQS's own maximum DelaySeconds (15 minutes)."""
DEFAULT_REGION: Final = "us-east-1"


@dataclass(frozen=True, slots=True)
class SqsConfig:
    """The queues, the endpoint and the time limits of the SQS transport."""

    queue_url: str
    """The default queue: every logical queue without a URL of its own."""
    dlq_url: str | None = None
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    call_timeout: float = 10.0
    """Seconds for one call (a long poll gets its wait time on top)."""
    connect_timeout: float = 5.0
    max_attempts: int = 3
    """botocore's attempts per call (standard retry mode), all within ``call_timeout``."""
    max_native_delay: int = SQS_MAX_DELAY_SECONDS
    """Longest DelaySeconds sent to SQS; longer delays hop (lowered only by tests)."""
    dead_letter_wait: int = 1
    """Long-poll seconds when reading the DLQ (short polls on SQS may miss messages)."""
    queue_urls: Mapping[str, str] = field(default_factory=dict)
    """Logical queue -> the SQS queue that holds its messages alone (``SQS_QUEUE_URLS``;
    docs/adr/0070-one-logical-queue-per-receive.md)."""
    priority_urls: Sequence[tuple[int, str]] = ()
    """Priority bands of the shared queue (``SQS_PRIORITY_QUEUE_URLS``, ADR 100):
    ``(floor, URL)``; a message of a logical queue without a URL of its own goes to the
    band with the highest floor at or below its priority, below every floor to
    ``queue_url``. A receive polls the bands highest first."""

    @property
    def bands(self) -> list[tuple[int, str]]:
        """The priority bands, highest floor first."""
        return sorted(self.priority_urls, key=lambda band: -band[0])

    def url_for(self, queue: str, priority: int = 0) -> str:
        """The SQS queue that holds the messages of logical queue ``queue`` (and, on the
        shared queue, of this priority)."""
        own = self.queue_urls.get(queue)
        if own is not None:
            return own
        for floor, url in self.bands:
            if priority >= floor:
                return url
        return self.queue_url

    def urls_for(self, queues: Collection[str] | None) -> list[str]:
        """The SQS queues a receive of ``queues`` (``None``: every queue) polls; the
        shared queue's priority bands come first, highest first."""
        if queues is None:
            urls = [self.queue_url, *self.queue_urls.values()]
        else:
            urls = [self.url_for(q) for q in sorted(queues)]
        if self.queue_url in urls:
            urls = [url for _, url in self.bands] + urls
        return list(dict.fromkeys(urls))

    @classmethod
    def from_env(
        cls, queue_url: str, dlq_url: str | None, env: Mapping[str, str],
        queue_urls: Mapping[str, str] | None = None,
        priority_urls: Sequence[tuple[int, str]] = (),
    ) -> SqsConfig:
        """The configuration for these queues (``SQS_QUEUE_URL``, ``SQS_DLQ_URL``,
        ``SQS_QUEUE_URLS``) with the standard AWS variables in ``env``."""
        region = (
            env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
            or region_from_url(queue_url) or DEFAULT_REGION
        )
        endpoint = env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL") or None
        return cls(
            queue_url=queue_url, dlq_url=dlq_url, region=region, endpoint_url=endpoint,
            queue_urls=dict(queue_urls or {}), priority_urls=tuple(priority_urls),
        )


def region_from_url(queue_url: str) -> str | None:
    """``eu-west-1`` from ``https://sqs.eu-west-1.amazonaws.com/123/q``, else ``None``."""
    host = urlsplit(queue_url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 4 and parts[0] == "sqs" and parts[-2] == "amazonaws":
        return parts[1]
    return None
