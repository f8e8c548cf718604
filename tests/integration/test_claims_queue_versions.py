"""A batch of claims reads its queues' versions with its candidates (issue 19, ADR 202).

The ``Queue`` aggregate refuses claims of a paused or full queue; a process that found a
queue never controlled, or holds it as it saved it, checked the stored version on every
batch with a lookup of its own (``select_versions``). The candidates' statement now
returns the versions of the queues the process watches, read in the claims' transaction,
and the batch's first look at each queue uses them. Counted at the recorder, not timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from ledger.commands import CompleteJob, PauseQueue, ResumeQueue, SetQueueLimit
from ledger.status import Status
from tests.integration.test_batch_claims import Fixture, anyio_backend, now, pg
from tests.support.ledgers import make_ledger

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


def lookups(pg: Fixture, monkeypatch: pytest.MonkeyPatch) -> list[list[UUID]]:
    """Every version lookup of the ledger's queue cache, from now on."""
    calls: list[list[UUID]] = []
    cache = pg.ledger.queue_cache
    original = cache._versions
    assert original is not None

    def counted(ids: Any) -> dict[UUID, int]:
        calls.append(list(ids))
        return original(ids)

    monkeypatch.setattr(cache, "_versions", counted)
    return calls


async def test_claims_and_reports_look_up_no_queue_version(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await pg.job()
    await pg.claims.claim(pg.request(1))  # the queue found never controlled
    calls = lookups(pg, monkeypatch)
    for _ in range(5):
        ids = [await pg.job() for _ in range(3)]
        claimed = await pg.claims.claim(pg.request(3))
        assert sorted(UUID(c.job_id) for c in claimed) == sorted(ids)
        reports = [CompleteJob(job_id=UUID(c.job_id), attempt=c.attempt, worker_id="w1")
                   for c in claimed]  # fmt: skip
        next_job = await pg.job()
        results, more = await pg.claims.report_and_claim(
            reports, [(c.seq, c.receipt) for c in claimed], pg.queue.name, pg.request(1)
        )
        assert [getattr(r, "status", r) for r in results] == [Status.COMPLETED] * 3
        assert [UUID(c.job_id) for c in more] == [next_job]
        await pg.claims.report(
            [CompleteJob(job_id=next_job, attempt=1, worker_id="w1")],
            [(more[0].seq, more[0].receipt)], pg.queue.name,
        )
    # a report alone has no candidates' statement: it looks the queue up, as before
    assert len(calls) == 5, calls  # 15 before: every batch looked the queue up


async def test_a_queue_paused_by_another_process_refuses_the_next_claims(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await pg.job()
    await pg.claims.claim(pg.request(1))  # the queue found never controlled
    operator = make_ledger("postgres", tmp_path / "operator", pg.url)  # another process
    operator.control_queue(PauseQueue(queue="default", actor="ops"), now())
    calls = lookups(pg, monkeypatch)
    waiting = await pg.job()
    assert await pg.claims.claim(pg.request(2)) == []  # refused: the queue is paused
    assert calls == []  # the pause seen through the candidates' statement
    assert pg.ledger.get_job(waiting).status == Status.PENDING
    operator.control_queue(ResumeQueue(queue="default", actor="ops"), now())
    operator.control_queue(SetQueueLimit(queue="default", actor="ops", max_running=1), now())
    fresh = [await pg.job(), await pg.job()]
    claimed = await pg.claims.claim(pg.request(2))  # seen resumed and capped at 1
    assert [UUID(c.job_id) for c in claimed] == fresh[:1]
    assert pg.ledger.get_job(fresh[1]).status == Status.PENDING
