"""Posting alerts to a Slack incoming webhook (or to the log when none is configured)."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

import anyio
import httpx

from ledger.policies.alerts import (
    Delivered,
    DeliveryOutcome,
    PermanentFailure,
    RetryLater,
    backoff,
    classify_answer,
)

log = logging.getLogger(__name__)


class AlertSink(Protocol):
    """Where alert messages go."""

    async def post(self, message: dict[str, Any], attempt: int) -> DeliveryOutcome: ...


class SlackWebhook:
    """An incoming webhook: one POST per message, every call bounded by a timeout."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout)

    async def post(self, message: dict[str, Any], attempt: int) -> DeliveryOutcome:
        try:
            with anyio.fail_after(self._timeout + 1):
                response = await self._client.post(self._url, json=message)
        except (httpx.HTTPError, TimeoutError) as error:
            # Network trouble is transient: back off like a 5xx.
            return RetryLater(backoff(attempt), f"{type(error).__name__}: {error}")
        return classify_answer(
            response.status_code, response.headers.get("Retry-After"), response.text, attempt
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class LoggedAlerts:
    """No webhook configured: alerts are written to the log (and kept in the ledger)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def post(self, message: dict[str, Any], attempt: int) -> DeliveryOutcome:
        self.messages.append(message)
        log.warning("dead-letter alert (no SLACK_WEBHOOK_URL set): %s", json.dumps(message))
        return Delivered()

    async def aclose(self) -> None:
        return None


__all__ = ["AlertSink", "Delivered", "LoggedAlerts", "PermanentFailure", "RetryLater",
           "SlackWebhook"]
