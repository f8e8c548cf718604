"""A batch of claims reads its jobs' events with the candidates' statement (issue 19, ADR
208), inside the transaction that decides and appends the claims, instead of a
``select_streams`` of its own. What that read protected is kept: a job another writer
changes between the candidates' read and the claims' append makes the append conflict on
its version, and the next round reads the job again (the streams handed over are used
once), so the claim is decided on the stored job. Reads are counted at the recorder;
nothing is timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.postgres.claims import PostgresClaims
from ledger.commands import CancelJob
from ledger.status import Status
from tests.integration.test_batch_claims import Fixture, anyio_backend, now, pg
from tests.integration.test_claimed_jobs_kept import Reads
from tests.support.ledgers import make_ledger

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


async def test_claims_read_their_jobs_with_the_candidates(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [await pg.job() for _ in range(3)]
    for job_id in ids:
        pg.ledger.forget(job_id)  # another process enqueued them, as in a fleet
    reads = Reads(monkeypatch)
    claimed = await pg.claims.claim(pg.request(3))
    assert sorted(UUID(c.job_id) for c in claimed) == sorted(ids)
    assert reads.of(ids) == []  # before: one select_streams of the 3 jobs
    assert {pg.ledger.get_job(job_id).status for job_id in ids} == {Status.IN_PROGRESS}
    assert {pg.ledger.get_job(job_id).attempt for job_id in ids} == {1}


async def test_a_job_changed_after_the_candidates_read_conflicts_and_is_read_again(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cancelled, kept = await pg.job(), await pg.job()
    for job_id in (cancelled, kept):
        pg.ledger.forget(job_id)
    operator = make_ledger("postgres", tmp_path / "operator", pg.url)  # another process
    candidates = PostgresClaims._candidates

    def then_cancelled(claims: PostgresClaims, *args: Any, **kwargs: Any) -> Any:
        found = candidates(claims, *args, **kwargs)  # the jobs' streams read, not appended
        operator.execute(CancelJob(job_id=cancelled, actor="ops", reason="r"), now())
        return found

    monkeypatch.setattr(PostgresClaims, "_candidates", then_cancelled)
    reads = Reads(monkeypatch)
    claimed = await pg.claims.claim(pg.request(2))
    assert [UUID(c.job_id) for c in claimed] == [kept]  # decided again on the stored job
    assert ("select_streams", cancelled) in reads.of([cancelled])  # the next round's read
    assert pg.ledger.get_job(cancelled).status == Status.CANCELLED
    assert "Claimed" not in [type(e).__name__ for e in pg.ledger.history(cancelled)]
    assert pg.ledger.get_job(kept).status == Status.IN_PROGRESS
    assert [row[0] for row in pg.rows()] == [str(kept)]  # the cancelled job's message gone
