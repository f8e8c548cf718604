"""A claim whose caller stops waiting once its transaction has begun (ADR 207): the jobs it
claimed are handed back as soon as it commits (their attempts failed with the reason,
their messages deleted), not left in progress with no worker until the stale threshold;
a caller that gives up before its claim is taken claims nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import anyio
import pytest

from adapters.service.queue_claims import HANDED_BACK
from ledger.commands import CompleteJob
from ledger.status import Status
from tests.integration.test_batch_claims import Fixture, anyio_backend, pg  # noqa: F401

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
def slow_claims(pg: Fixture) -> Iterator[list[float]]:  # noqa: F811
    """The claims' transaction sleeps first (on the writer's thread, after the drain took
    its callers): the callers give up while it runs."""
    claims = pg.claims.claims
    run = claims.run
    delay = [0.5]

    def slow_run(*args: Any) -> Any:
        time.sleep(delay[0])
        return run(*args)

    claims.run = slow_run  # type: ignore[method-assign,assignment]
    yield delay
    claims.run = run  # type: ignore[method-assign]


async def wait_for(condition: Any, seconds: float = 20.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.02)


async def test_a_claim_whose_caller_gave_up_mid_transaction_is_handed_back(
    pg: Fixture, slow_claims: list[float],  # noqa: F811
) -> None:
    job = await pg.job()
    with anyio.move_on_after(0.2) as scope:  # the worker's call timeout
        await pg.claims.claim(pg.request(1))
    assert scope.cancelled_caught
    await wait_for(lambda: pg.ledger.get_job(job).status != Status.IN_PROGRESS
                   and pg.ledger.get_job(job).attempt == 1)  # fmt: skip
    handed = pg.ledger.get_job(job)
    assert handed.last_error == HANDED_BACK
    assert handed.status in (Status.PENDING, Status.SCHEDULED)  # the retry policy's call
    assert all(count == 0 for _, count, _ in pg.rows())  # the claimed message is deleted


async def test_the_claim_of_a_report_and_claim_whose_caller_gave_up_is_handed_back(
    pg: Fixture, slow_claims: list[float],  # noqa: F811
) -> None:
    slow_claims[0] = 0.0
    first, second = await pg.job(), await pg.job()
    (claimed,) = await pg.claims.claim(pg.request(1))
    assert UUID(claimed.job_id) == first
    slow_claims[0] = 0.5
    report = CompleteJob(job_id=first, attempt=1, worker_id="w1")
    receipt = (claimed.seq, claimed.receipt.partition(":")[2])
    with anyio.move_on_after(0.2):
        await pg.claims.report_and_claim([report], [receipt], pg.queue.name, pg.request(1))
    await wait_for(lambda: pg.ledger.get_job(second).last_error == HANDED_BACK)
    assert pg.ledger.get_job(first).status == Status.COMPLETED  # the report itself stands
    assert pg.ledger.get_job(second).status != Status.IN_PROGRESS


async def test_a_caller_that_gave_up_before_its_claim_was_taken_claims_nothing(
    pg: Fixture,  # noqa: F811
) -> None:
    job = await pg.job()
    pg.claims.writer.call(lambda: time.sleep(0.5))  # the claim waits behind it
    with anyio.move_on_after(0.2):
        await pg.claims.claim(pg.request(1))
    await anyio.sleep(0.8)
    untouched = pg.ledger.get_job(job)
    assert (untouched.status, untouched.attempt) == (Status.PENDING, 0)
    assert [count for _, count, _ in pg.rows()] == [0]
