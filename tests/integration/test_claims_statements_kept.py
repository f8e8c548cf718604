"""A batch of claims renders none of its statements again and chooses no parameter
dumper again (issue 19, ADR 192).

The jobs' events read (``select_streams``), the queue's version lookup
(``select_versions``), the append inside the claims transaction (``_insert_joined``, with
psycopg's nested transaction composing ``SAVEPOINT`` and ``RELEASE``), the receive and
the reports' delete each made a new cursor, which chose the array parameters' dumpers
again, and the composed statements were rendered to bytes on every execute. They now use
the cursor kept with the connection and bytes rendered once (as the one-job append since
ADR 187). Counted, not timed."""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql
from psycopg.types.array import ListBinaryDumper, ListDumper

from adapters.postgres.backend import postgres_env
from adapters.postgres.event_recorder import LedgerEventRecorder
from ledger.application import JobLedger
from tests.integration.test_batch_claims import Fixture, anyio_backend, pg
from tests.integration.test_claims_round_trips import POOL, claim_fresh

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


def counter(
    monkeypatch: pytest.MonkeyPatch, cls: Any, name: str, thread: str | None = None
) -> list[int]:
    """Calls of ``cls.name`` (made on ``thread`` if given)."""
    calls = [0]
    original = getattr(cls, name)

    def counted(self: Any, *args: Any) -> Any:
        if thread is None or threading.current_thread().name == thread:
            calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(cls, name, counted)
    return calls


async def test_claims_batches_render_their_append_and_lookup_once(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = str(pg.claims.writer.call(lambda: threading.current_thread().name).result(10))
    for _ in range(POOL * 2):  # every pooled session's first use
        await claim_fresh(pg, 4)
    renderings = counter(monkeypatch, sql.Composed, "as_bytes")
    upgrades = [counter(monkeypatch, cls, "upgrade", thread)  # the claims' thread only
                for cls in (ListDumper, ListBinaryDumper)]  # fmt: skip
    for _ in range(10):
        assert len(await claim_fresh(pg, 4)) == 4
    assert renderings[0] == 0  # 30 before: the jobs' read, SAVEPOINT and RELEASE per batch
    assert sum(u[0] for u in upgrades) == 0  # 110 before: a new cursor per statement


def test_a_joined_append_that_conflicts_undoes_only_itself(postgres_url: str) -> None:
    """The joined append's own savepoint (bytes, no longer psycopg's nested transaction):
    a version conflict is an ``IntegrityError``, the transaction goes on, and the next
    append on the same connection and cursors commits with it."""
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = ledger.recorder
        assert isinstance(recorder, LedgerEventRecorder)
        job, other = uuid4(), uuid4()
        recorder.insert_rows(([job], [1], ["tests:Event"], [b"{}"]))
        with recorder.datastore.pool.connection() as conn, conn.transaction(), \
                recorder.joined(conn):  # fmt: skip
            for _ in range(2):  # the second conflict runs on the kept cursors
                with pytest.raises(IntegrityError):
                    recorder.insert_rows(([job], [1], ["tests:Event"], [b"{}"]))
            recorder.insert_rows(([other], [1], ["tests:Event"], [b"{}"]))
        assert recorder.select_versions([job, other]) == {job: 1, other: 1}
    finally:
        ledger.close()
