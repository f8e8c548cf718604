"""``POST /workers/claims`` and ``POST /workers/reports`` (issue 19, ADR 155): a worker key
claims up to N jobs of the local queue in one request and reports them in one, their
messages deleted with the reports; N is 1 to 100 (400 outside); a key scoped to a customer
claims only that customer's jobs; a worker over HTTP runs on them, and on a ledger that
cannot (SQLite) the routes answer 404 and the worker receives, then claims."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import anyio
import httpx
import psycopg
import pytest

from adapters.http.wiring import build_http
from adapters.local_queue.queue import LocalQueue
from adapters.service.backend import backend_for
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from adapters.worker import HttpLedger, JobContext, Worker, WorkerConfig
from ledger.access import Role, new_key
from ledger.commands import EnqueueJob
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.support.http import serve_in_thread
from tests.support.workers import running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Served:
    container: Container
    http: httpx.Client
    keys: dict[str, str]
    base_url: str
    url: str | None

    def as_(self, name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[name]}"}

    def job(self, customer: str = "acme") -> UUID:
        job_id = self.container.ledger.execute(EnqueueJob(customer_id=customer), utc_now()).job_id
        if self.messages(job_id):
            return job_id  # the enqueue wrote its message itself (the outbox, ADR 151)
        queue = LocalQueue(self.container.backend.queue_store())
        try:
            anyio.run(queue.send, JobMessage(job_id=job_id, attempt=0, customer_id=customer,
                                             dedup_key=str(uuid.uuid4())))  # fmt: skip
        finally:
            anyio.run(queue.aclose)
        return job_id

    def messages(self, job_id: UUID | None = None) -> int:
        if self.url is None:
            return 0
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT count(*) FROM local_queue_messages WHERE "
                               "%s::uuid IS NULL OR job_id = %s::uuid",
                               (job_id, job_id)).fetchone()  # fmt: skip
        return int(row[0]) if row else 0


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = Settings(database_url=url, ledger_data_dir=tmp_path / "data")
    backend = backend_for(settings)
    backend.migrate()
    container = build(settings, backend)
    keys = {}
    for name, customer in (("worker", None), ("acme", "acme")):
        secret, record = new_key(Role.WORKER, customer, None, utc_now())
        container.backend.key_store().add(record)
        keys[name] = secret
    try:
        with serve_in_thread(build_http(container)) as api, \
                httpx.Client(base_url=api.base_url, timeout=30) as http:
            yield Served(container, http, keys, api.base_url, url)
    finally:
        container.close()


postgres = pytest.mark.parametrize("served", ["postgres"], indirect=True)


@postgres
def test_claims_n_in_one_request_and_reports_them_in_one(served: Served) -> None:
    jobs = [served.job() for _ in range(3)]
    answer = served.http.post("/workers/claims", headers=served.as_("worker"),
                              json={"worker_id": "w1", "max": 2})  # fmt: skip
    assert answer.status_code == 200, answer.text
    claimed = answer.json()["jobs"]
    assert [UUID(c["job_id"]) for c in claimed] == jobs[:2]
    assert {c["attempt"] for c in claimed} == {1}
    reports = [{"job_id": c["job_id"], "attempt": 1, "outcome": "completed",
                "result": {"ok": True}, "receipt": c["receipt"]} for c in claimed]  # fmt: skip
    reports.append({"job_id": str(jobs[2]), "attempt": 1, "outcome": "completed"})
    answer = served.http.post("/workers/reports", headers=served.as_("worker"),
                              json={"worker_id": "w1", "reports": reports})  # fmt: skip
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r.get("status") for r in results] == ["completed", "completed", None]
    assert results[2]["code"] == "unknown_attempt"  # never claimed: refused, nothing else
    assert served.container.ledger.get_job(jobs[0]).status == Status.COMPLETED
    assert served.messages() == 1  # the third job's message, not claimed yet


@postgres
@pytest.mark.parametrize("most", [0, 101, -5])
def test_n_outside_1_to_100_is_a_400_and_takes_nothing(served: Served, most: int) -> None:
    served.job()
    answer = served.http.post("/workers/claims", headers=served.as_("worker"),
                              json={"worker_id": "w1", "max": most})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_max"
    assert answer.headers["content-type"].startswith("application/problem+json")


@postgres
def test_a_scoped_worker_key_claims_only_its_customers_jobs(served: Served) -> None:
    others = [served.job("globex") for _ in range(3)]
    mine = served.job("acme")
    answer = served.http.post("/workers/claims", headers=served.as_("acme"),
                              json={"worker_id": "w1", "max": 10})  # fmt: skip
    assert [UUID(c["job_id"]) for c in answer.json()["jobs"]] == [mine]
    assert {served.container.ledger.get_job(j).status for j in others} == {Status.PENDING}
    report = {"job_id": str(others[0]), "attempt": 1, "outcome": "completed"}
    answer = served.http.post("/workers/reports", headers=served.as_("acme"),
                              json={"worker_id": "w1", "reports": [report]})  # fmt: skip
    assert answer.status_code == 404  # another customer's job, as the single route


@pytest.mark.parametrize("served", ["postgres", "sqlite"], indirect=True)
async def test_a_worker_over_http_claims_in_batches_or_falls_back(served: Served) -> None:
    jobs = {await anyio.to_thread.run_sync(served.job) for _ in range(8)}
    done: set[UUID] = set()

    async def handler(ctx: JobContext) -> str:
        done.add(ctx.job_id)
        return "ok"

    port = HttpLedger(served.base_url, served.keys["worker"], batch_claims=True)
    queue = LocalQueue(served.container.backend.queue_store())
    worker = Worker(handler, queue, port, WorkerConfig(concurrency=4, worker_id="w-http"))
    async with running(worker):
        await until(lambda: worker.stats.completed == len(jobs))
    await port.aclose()
    await queue.aclose()
    assert done == jobs
    assert worker._claimer is not None
    assert worker._claimer.enabled == (served.url is not None)  # SQLite: 404, fell back


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)
