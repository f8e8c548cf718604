"""The round trips of a batch of claims on PostgreSQL (issue 19, ADR 191), counted at
psycopg's ``Connection.wait`` on the batch writer's thread: each statement, ``BEGIN``,
``COMMIT``, ``SAVEPOINT`` and ``RELEASE`` is one (a commit of a connection with no open
transaction sends nothing and is not counted). Nothing is timed.

A batch of 4 claims of jobs the process does not hold made 12: ``BEGIN``, the
candidates, the jobs' events read (``BEGIN``, ``SET LOCAL jit = off``, the read,
``COMMIT``), the queue's version, the append in its savepoint (``SAVEPOINT``, the append,
``RELEASE``), the receive, ``COMMIT``. The read's session turns JIT off once, so the read
is one statement, its own transaction: 9 (ADR 191). The queue's version is read by the
candidates' statement (ADR 202): 8. So are the jobs' events (ADR 208): 7."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import pq

from tests.integration.test_batch_claims import Fixture, anyio_backend, pg

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]
POOL = 5
"""The ledger's pool (``POSTGRES_POOL_SIZE``), whose sessions take turns."""


class RoundTrips:
    """Round trips (``Connection.wait`` calls that send something) made on ``thread``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, thread: str) -> None:
        self.sent: list[str] = []
        wait = psycopg.Connection.wait

        def counted(conn: psycopg.Connection[Any], gen: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(gen, "__qualname__", "?")
            idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
            if threading.current_thread().name == thread and not (
                name.endswith("_commit_gen") and idle
            ):
                self.sent.append(name)
            return wait(conn, gen, *args, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "wait", counted)


async def claim_fresh(pg: Fixture, jobs: int) -> list[UUID]:
    """Enqueue ``jobs`` jobs, drop them from the process's cache (another process
    enqueued them, as in a fleet), claim them in one batch."""
    ids = [await pg.job() for _ in range(jobs)]
    for job_id in ids:
        pg.ledger.forget(job_id)
    return [UUID(c.job_id) for c in await pg.claims.claim(pg.request(jobs))]


async def test_a_batch_of_claims_makes_seven_round_trips(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = str(pg.claims.writer.call(lambda: threading.current_thread().name).result(10))
    for _ in range(POOL * 2):  # every pooled session's first statements: prepares, JIT off
        await claim_fresh(pg, 4)
    trips = RoundTrips(monkeypatch, thread)
    assert len(await claim_fresh(pg, 4)) == 4
    assert len(trips.sent) == 7, " ".join(trips.sent)
    again = RoundTrips(monkeypatch, thread)
    assert len(await claim_fresh(pg, 4)) == 4
    assert len(again.sent) == 7, " ".join(again.sent)  # the session keeps JIT off
