"""A worker process reports the jobs it claimed from the copies its claims kept (issue 19):
no read of their events, and no decision on a copy another writer has overtaken.

The claims' transaction saves each claimed job in the process's cache as it stood after
its ``Claimed`` append (``JobCache.remember``); the report of that attempt is decided on
that copy. A job another process wrote meanwhile (an operator's requeue, the stale
policy) makes the report's append conflict on its version; the copy is then dropped and
the job read again (``JobLedger._decide_in_rounds``), so the answer is the stored job's.
Reads are counted at the recorder (the streams and versions statements, one job's read
through the repository); nothing is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.local_queue.claims import ClaimedMessage
from adapters.postgres.event_recorder import LedgerEventRecorder
from ledger.application import JobLedger
from ledger.commands import CompleteJob, RequeueJob
from ledger.errors import AttemptSuperseded
from ledger.status import Status
from tests.integration.test_batch_claims import Fixture, anyio_backend, now, pg
from tests.support.ledgers import make_ledger

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


class Reads:
    """The jobs read from the store, by the statement that read them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.jobs: list[tuple[str, UUID]] = []
        for name in ("select_streams", "select_versions"):
            monkeypatch.setattr(LedgerEventRecorder, name, self._counted(name))
        stored = JobLedger._stored_job

        def one(ledger: JobLedger, job_id: UUID) -> Any:
            self.jobs.append(("repository", job_id))
            return stored(ledger, job_id)

        monkeypatch.setattr(JobLedger, "_stored_job", one)

    def _counted(self, name: str) -> Callable[..., Any]:
        original = getattr(LedgerEventRecorder, name)

        def counted(recorder: LedgerEventRecorder, ids: Any, *args: Any) -> Any:
            self.jobs += [(name, job_id) for job_id in ids]
            return original(recorder, ids, *args)

        return counted

    def of(self, ids: list[UUID]) -> list[tuple[str, UUID]]:
        return [(how, job_id) for how, job_id in self.jobs if job_id in ids]


def completions(claimed: list[ClaimedMessage]) -> tuple[list[CompleteJob], list[tuple[int, str]]]:
    commands = [CompleteJob(job_id=UUID(c.job_id), attempt=c.attempt, worker_id="w1")
                for c in claimed]  # fmt: skip
    return commands, [(c.seq, c.receipt) for c in claimed]


async def claim_fresh(pg: Fixture, jobs: int) -> list[ClaimedMessage]:
    """Claim ``jobs`` jobs this process has never held (another process enqueued them)."""
    ids = [await pg.job() for _ in range(jobs)]
    for job_id in ids:
        pg.ledger.forget(job_id)
    return await pg.claims.claim(pg.request(jobs))


async def test_reports_of_jobs_this_process_claimed_read_no_job(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = Reads(monkeypatch)
    claimed = await claim_fresh(pg, 4)
    ids = [UUID(c.job_id) for c in claimed]
    assert len(claimed) == 4
    assert reads.of(ids) == []  # read with the candidates (ADR 208), no statement of its own
    reads.jobs.clear()
    results = await pg.claims.report(*completions(claimed), pg.queue.name)
    assert [getattr(r, "status", r) for r in results] == [Status.COMPLETED] * 4
    assert reads.of(ids) == []  # decided on the copies the claim kept: 0 reads per job
    assert {pg.ledger.get_job(job_id).status for job_id in ids} == {Status.COMPLETED}


async def test_a_job_another_writer_touched_after_the_claim_is_read_again(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    claimed = await claim_fresh(pg, 2)
    touched, untouched = (UUID(c.job_id) for c in claimed)
    operator = make_ledger("postgres", tmp_path / "operator", pg.url)  # another process
    operator.execute(RequeueJob(job_id=touched, actor="ops", reason="stuck"), now())
    reads = Reads(monkeypatch)
    results = await pg.claims.report(*completions(claimed), pg.queue.name)
    assert isinstance(results[0], AttemptSuperseded)  # not completed on the kept copy
    assert getattr(results[1], "status", None) == Status.COMPLETED
    assert ("select_streams", touched) in reads.of([touched])  # the copy dropped, read again
    assert ("select_streams", untouched) not in reads.of([untouched])
    stored = pg.ledger.get_job(touched)
    assert (stored.status, stored.attempt) == (Status.PENDING, 1)
    topics = [type(e).__name__ for e in pg.ledger.history(touched)]
    assert "Completed" not in topics
    assert pg.ledger.get_job(untouched).status == Status.COMPLETED
