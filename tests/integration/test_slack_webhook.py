"""The webhook adapter against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from adapters.slack.webhook import SlackWebhook
from ledger.policies.alerts import Delivered, PermanentFailure, RetryLater
from tests.support.slack_receiver import Answer, SlackReceiver


def post(url: str, attempt: int = 1) -> object:
    async def go() -> object:
        webhook = SlackWebhook(url, timeout=5)
        try:
            return await webhook.post({"text": "hello", "blocks": []}, attempt)
        finally:
            await webhook.aclose()

    return anyio.run(go)


def test_answers_from_a_real_receiver() -> None:
    with SlackReceiver() as slack:
        slack.script(
            Answer(429, "rate_limited", {"Retry-After": "2"}),
            Answer(500, "oops"),
            Answer(404, "no_service"),
        )
        assert post(slack.url) == RetryLater(timedelta(seconds=2), "HTTP 429: rate_limited")
        assert post(slack.url, attempt=3) == RetryLater(timedelta(seconds=4), "HTTP 500: oops")
        assert post(slack.url) == PermanentFailure("HTTP 404: no_service")
        assert post(slack.url) == Delivered()
        assert slack.posts == [{"text": "hello", "blocks": []}]


def test_an_unreachable_webhook_is_transient() -> None:
    with SlackReceiver() as slack:
        url = slack.url
    outcome = post(url)
    assert isinstance(outcome, RetryLater)
    assert "ConnectError" in outcome.reason


@pytest.mark.parametrize("attempt", [1, 2])
def test_backoff_grows_with_attempts(attempt: int) -> None:
    with SlackReceiver() as slack:
        slack.script(Answer(503, "busy"))
        outcome = post(slack.url, attempt)
    assert outcome == RetryLater(timedelta(seconds=2 ** (attempt - 1)), "HTTP 503: busy")
