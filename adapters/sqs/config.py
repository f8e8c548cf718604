"""Where the SQS queues are and how long to wait for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

SQS_MAX_DELAY_SECONDS: Final = 900
"""SQS's own maximum DelaySeconds (15 minutes)."""
DEFAULT_REGION: Final = "us-east-1"


@dataclass(frozen=True, slots=True)
class SqsConfig:
    """The queues, the endpoint and the time limits of the SQS transport."""

    queue_url: str
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

    @classmethod
    def from_env(
        cls, queue_url: str, dlq_url: str | None, env: Mapping[str, str]
    ) -> SqsConfig:
        """The configuration for these queues (``SQS_QUEUE_URL``, ``SQS_DLQ_URL``) with
        the standard AWS variables in ``env``."""
        region = (
            env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
            or region_from_url(queue_url) or DEFAULT_REGION
        )
        endpoint = env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL") or None
        return cls(queue_url=queue_url, dlq_url=dlq_url, region=region, endpoint_url=endpoint)


def region_from_url(queue_url: str) -> str | None:
    """``eu-west-1`` from ``https://sqs.eu-west-1.amazonaws.com/123/q``, else ``None``."""
    host = urlsplit(queue_url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 4 and parts[0] == "sqs" and parts[-2] == "amazonaws":
        return parts[1]
    return None
