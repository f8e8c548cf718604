"""The worker's HTTP port tells a report the API did not apply because other writers won
every try (409 ``concurrency_exhausted``: send it again) from one whose attempt is no
longer current (any other 409: superseded, never sent again)."""

from __future__ import annotations

from uuid import uuid4

import anyio
import httpx
import pytest

from adapters.worker.http_client import HttpLedger, ReportSuperseded
from ledger.errors import ConcurrencyExhausted


def port_answering(code: str) -> HttpLedger:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"code": code, "detail": f"{code} here"})

    client = httpx.AsyncClient(base_url="http://ledger.test", transport=httpx.MockTransport(answer))
    return HttpLedger("http://ledger.test", "k", client=client)


def test_a_409_concurrency_exhausted_to_a_report_is_sent_again() -> None:
    async def main() -> None:
        port = port_answering("concurrency_exhausted")
        with pytest.raises(ConcurrencyExhausted, match="concurrency_exhausted here"):
            await port.complete(uuid4(), 1, "w1", {"ok": True})
        with pytest.raises(ConcurrencyExhausted):
            await port.fail(uuid4(), 1, "w1", "boom")

    anyio.run(main)


def test_any_other_409_to_a_report_is_superseded() -> None:
    async def main() -> None:
        port = port_answering("attempt_superseded")
        with pytest.raises(ReportSuperseded):
            await port.complete(uuid4(), 1, "w1", {"ok": True})

    anyio.run(main)
