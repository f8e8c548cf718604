"""A claimed message's body is decoded once on its way to the worker (issue 19, ADR 209):
the claims decode it to decide the job's claim and hand the decoded message with the
claimed job (``ClaimedMessage.message``), and the worker's ``received_of`` uses it
instead of decoding ``body`` again. Decodes are counted at the job messages' decoder;
nothing is timed."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from adapters.local_queue.claims import ClaimedMessage, received_of
from ledger.errors import MalformedMessage
from ledger.ports import transport
from tests.integration.test_batch_claims import Fixture, anyio_backend, pg

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


class CountedDecoder:
    def __init__(self) -> None:
        self.decoder = transport._DECODER
        self.calls = 0

    def decode(self, data: Any) -> Any:
        self.calls += 1
        return self.decoder.decode(data)


async def test_a_claimed_body_is_decoded_once(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(4):
        await pg.job()
    decodes = CountedDecoder()
    monkeypatch.setattr(transport, "_DECODER", decodes)
    claimed = await pg.claims.claim(pg.request(4))
    received = [received_of(job) for job in claimed]  # as the worker takes them
    assert len(received) == 4
    assert decodes.calls == 4  # 8 before: the claims' decode, then the worker's
    assert [str(r.message.job_id) for r in received] == [c.job_id for c in claimed]


async def test_a_claim_without_the_decoded_message_is_decoded_and_checked(
    pg: Fixture,
) -> None:
    await pg.job()
    (job,) = await pg.claims.claim(pg.request(1))
    plain = msgspec.structs.replace(job, message=None)  # from a ledger that does not send it
    assert received_of(plain).message == received_of(job).message
    mismatched = msgspec.structs.replace(job, message_attempt=job.message_attempt + 1)
    with pytest.raises(MalformedMessage):
        received_of(mismatched)  # the decoded message is checked as the body was
    sent = msgspec.json.decode(msgspec.json.encode(job), type=ClaimedMessage)  # over HTTP
    assert sent.message == job.message
