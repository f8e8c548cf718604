"""What becomes of a killed worker's claimed message (issue 19): the worker dies after its
claim (SIGKILL: no report, no hand-back), the stale policy requeues the job, a new message
wakes a worker that completes it, and the dead worker's row stays invisible in
``local_queue_messages`` until its visibility ends. Then the next claim that receives it
finds its job no longer pending and deletes it (refused as obsolete, ADR 155): settled,
not left forever, and never a second run of the job. The queue's clock is moved past the
visibility instead of waiting; nothing is timed.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from uuid import UUID

import pytest

from adapters.service.queue_claims import QueueClaims
from ledger.commands import CompleteJob, DetectStale
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.integration.test_batch_claims import Fixture, anyio_backend, now, pg

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "pg"]


async def test_a_killed_workers_message_is_deleted_once_received_after_its_visibility(
    pg: Fixture,
) -> None:
    job = await pg.job()
    (dead,) = await pg.claims.claim(pg.request(1))  # and the worker is SIGKILLed
    later = now() + pg.ledger.stale_threshold + timedelta(seconds=1)
    pg.ledger.execute(DetectStale(job_id=job, attempt=dead.attempt, detected_by="t"), later)
    assert pg.ledger.get_job(job).status == Status.PENDING
    if len(pg.rows()) == 1:  # no outbox here (ADR 151): the dispatcher's send, as it would
        await pg.queue.send(JobMessage(job_id=job, attempt=1, customer_id="acme",
                                       queue="default", dedup_key=str(uuid.uuid4())))  # fmt: skip
    (alive,) = await pg.claims.claim(pg.request(5))  # the dead one's row still invisible
    assert (alive.attempt, alive.seq != dead.seq) == (2, True)
    done = CompleteJob(job_id=job, attempt=2, worker_id="w1")  # the live worker
    await pg.claims.report([done], [(alive.seq, alive.receipt.partition(":")[2])],
                           pg.queue.name)  # fmt: skip
    assert pg.ledger.get_job(job).status == Status.COMPLETED
    assert [(j, c, visible) for j, c, visible in pg.rows()] == [(str(job), 1, False)]
    after = QueueClaims(pg.claims.claims, pg.claims.writer, now,
                        epoch=lambda: time.time() + 31)  # past the 30 s visibility
    assert await after.claim(pg.request(5)) == []  # refused: the job is completed
    assert pg.rows() == []  # the killed worker's row settled
    assert [type(e).__name__ for e in pg.ledger.history(job)].count("Completed") == 1
    assert UUID(dead.job_id) == job
