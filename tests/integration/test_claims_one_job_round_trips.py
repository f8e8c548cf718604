"""A claim of ONE job the claiming process does not hold reads it in the batch's one
statement, as a claim of several does (issue 19, ADR 201): a worker with one free slot
claims one job at a time, the common case while jobs trickle in. Below two jobs the
batch read each job through eventsourcing's repository instead: its snapshot, then its
events, two round trips and the generic decoding. Counted at psycopg's
``Connection.wait`` on the batch writer's thread, not timed."""

from __future__ import annotations

import threading

import pytest

from tests.integration.test_batch_claims import Fixture, anyio_backend, pg
from tests.integration.test_claims_round_trips import POOL, RoundTrips, claim_fresh

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


async def test_a_claim_of_one_job_makes_as_many_round_trips_as_a_claim_of_four(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = str(pg.claims.writer.call(lambda: threading.current_thread().name).result(10))
    for _ in range(POOL * 2):  # every pooled session's first statements: prepares, JIT off
        await claim_fresh(pg, 4)
        await claim_fresh(pg, 1)
    trips = RoundTrips(monkeypatch, thread)
    assert len(await claim_fresh(pg, 4)) == 4
    four, trips.sent = trips.sent, []
    assert len(await claim_fresh(pg, 1)) == 1
    assert len(four) == 7, " ".join(four)  # 8 before ADR 208: the jobs' events read
    assert len(trips.sent) == 7, " ".join(trips.sent)  # 10 before ADR 201, 8 before 208
