"""``POST /workers/claims`` with ``answer_within_seconds`` (ADR 207): a claim that cannot
answer in time answers 503 ``claim_timed_out`` and hands back the jobs its transaction
took, instead of claiming them for a worker that stopped listening; the worker's HTTP
client asks for a second under its own timeout; out-of-range values are refused."""

from __future__ import annotations

import time
from typing import Any

import pytest

from adapters.postgres.claims import PostgresClaims
from adapters.service.queue_claims import HANDED_BACK
from adapters.worker import HttpLedger
from ledger.status import Status
from tests.integration.test_worker_claims_http import Served, postgres, served  # noqa: F401


@pytest.fixture
def slow_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    run = PostgresClaims.run

    def slow_run(self: PostgresClaims, *args: Any) -> Any:
        time.sleep(1.6)  # on the writer's thread, once the drain took the request
        return run(self, *args)

    monkeypatch.setattr(PostgresClaims, "run", slow_run)


@postgres
def test_a_claim_that_cannot_answer_in_time_is_a_503_and_hands_its_jobs_back(
    served: Served, slow_claims: None,  # noqa: F811
) -> None:
    job = served.job()
    answer = served.http.post("/workers/claims", headers=served.as_("worker"), json={
        "worker_id": "w1", "max": 1, "answer_within_seconds": 1,
    })
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "claim_timed_out"
    assert answer.headers["retry-after"] == "1"
    deadline = time.monotonic() + 20
    while served.container.ledger.get_job(job).last_error != HANDED_BACK:
        assert time.monotonic() < deadline, "the claimed job was not handed back"
        time.sleep(0.05)
    assert served.container.ledger.get_job(job).status != Status.IN_PROGRESS


@postgres
def test_a_claim_that_answers_in_time_claims(served: Served) -> None:  # noqa: F811
    job = served.job()
    answer = served.http.post("/workers/claims", headers=served.as_("worker"), json={
        "worker_id": "w1", "max": 1, "answer_within_seconds": 5,
    })
    assert answer.status_code == 200, answer.text
    assert [c["job_id"] for c in answer.json()["jobs"]] == [str(job)]


@postgres
@pytest.mark.parametrize("within", [0, 1e-300, 0.99, -1, 301, "soon"])
def test_an_answer_time_out_of_range_is_refused_and_claims_nothing(
    served: Served, within: object,  # noqa: F811
) -> None:
    job = served.job()
    answer = served.http.post("/workers/claims", headers=served.as_("worker"), json={
        "worker_id": "w1", "max": 1, "answer_within_seconds": within,
    })
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert served.container.ledger.get_job(job).status == Status.PENDING


@pytest.mark.parametrize(
    ("timeout", "budget"), [(10.0, 9.0), (3.0, 2.0), (1.5, 1.0), (0.2, 1.0), (3600.0, 300.0)]
)
def test_the_workers_client_asks_for_a_second_under_its_own_timeout(
    timeout: float, budget: float,
) -> None:
    assert HttpLedger("http://127.0.0.1:9", None, call_timeout=timeout).claim_budget == budget
