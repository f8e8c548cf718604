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

import pytest
from psycopg import sql
from psycopg.types.array import ListBinaryDumper, ListDumper

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
