"""A claims' transaction wakes the log's listeners within the listeners' own linger (ADR
203): its poke allows ``NOTIFY_WITHIN``, so a worker's batches share one ``NOTIFY``, and a
listener is still woken after the last one; a poll that claimed nothing (an idle worker)
wakes no one. Counts, not times."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest

from adapters.postgres.claims import NOTIFY_WITHIN
from adapters.postgres.event_recorder import LedgerEventRecorder
from ledger.commands import CompleteJob
from tests.integration.test_batch_claims import Fixture, anyio_backend, pg

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


async def test_claims_allow_the_listeners_linger_wake_them_and_empty_polls_do_not(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = pg.ledger.recorder
    assert isinstance(recorder, LedgerEventRecorder)
    notifier = recorder.notifier
    allowed: list[float] = []
    poke = notifier.poke

    def counted(within: float = 0.0) -> Any:
        allowed.append(within)
        return poke(within)

    monkeypatch.setattr(notifier, "poke", counted)
    with psycopg.connect(pg.url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{recorder.channel_name}"')
        ids = [await pg.job() for _ in range(3)]
        allowed.clear()
        claimed = await pg.claims.claim(pg.request(3))
        assert sorted(UUID(c.job_id) for c in claimed) == sorted(ids)
        await pg.claims.report(
            [CompleteJob(job_id=UUID(c.job_id), attempt=c.attempt, worker_id="w1")
             for c in claimed],
            [(c.seq, c.receipt) for c in claimed], pg.queue.name,
        )
        assert allowed == [NOTIFY_WITHIN, NOTIFY_WITHIN]  # [0.0, 0.0] before: one per batch
        assert list(listener.notifies(timeout=5.0, stop_after=1)), "no NOTIFY after claims"
        list(listener.notifies(timeout=0.5))
        allowed.clear()
        assert await pg.claims.claim(pg.request(1)) == []  # an idle worker's poll
        assert allowed == []  # appended nothing, wakes no one (a NOTIFY per poll before)
