"""``ledger worker`` as real processes: SIGTERM drains, kill -9 is recovered.

- On the embedded default (SQLite, the local queue in the same file): SIGTERM lets a short
  job finish, interrupts a long one after the grace period and reports it failed
  (``worker shutting down``: the retry policy requeues it), and the process exits 0, even
  past a plain handler that ignores its cancellation. Nothing stays in progress.
- On PostgreSQL with SQS (moto's server on 127.0.0.1), the fleet as processes
  (``ledger projections run``, ``ledger monitor dispatch``, ``ledger monitor stale`` and
  two workers): one worker is killed with SIGKILL mid-job; after the stale threshold its
  jobs are requeued by the monitor, sent by the dispatcher and completed by the other.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import pytest

from adapters.service.backend import backend_for
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.settings import Settings
from ledger.commands import EnqueueJob
from ledger.job import Job
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.support.sqs import SqsQueues

LEDGER = shutil.which("ledger")
ROOT = Path(__file__).resolve().parents[2]
CONFIG_VARIABLES = (
    "DATABASE_URL",
    "LEDGER_DATA_DIR",
    "STALE_THRESHOLD_MINUTES",
    "SQS_QUEUE_URL",
    "SQS_DLQ_URL",
    "SLACK_WEBHOOK_URL",
    "LEDGER_API_URL",
    "LEDGER_API_KEY",
)


@dataclass
class Fleet:
    env: dict[str, str]
    settings: Settings
    container: Container
    cwd: Path

    def enqueue(self, payloads: list[Any]) -> list[UUID]:
        ids = [
            self.container.ledger.execute(
                EnqueueJob(customer_id="acme", payload=p, max_attempts=3), utc_now()
            ).job_id
            for p in payloads
        ]
        self.send(ids)
        return ids

    def send(self, ids: list[UUID]) -> None:
        """What the dispatcher does for Enqueued and Requeued: one message per decision."""

        async def send() -> None:
            transport = build_transport(self.settings, backend_for(self.settings), self.env)
            try:
                for job_id in ids:
                    job = self.job(job_id)
                    await transport.send(
                        JobMessage(
                            job_id=job_id,
                            attempt=job.attempt,
                            customer_id=job.customer_id,
                            queue=job.queue,
                            dedup_key=f"{job_id}:{job.version}",
                        )
                    )
            finally:
                await transport.aclose()

        anyio.run(send)

    def job(self, job_id: UUID) -> Job:
        return self.container.ledger.get_job(job_id)

    def history(self, job_id: UUID) -> list[Job.Event]:
        return self.container.ledger.history(job_id)

    @contextmanager
    def worker(self, handler: str, *args: str) -> Iterator[subprocess.Popen[str]]:
        with self.process("worker", "--handler", handler, *args, ready=" running ") as process:
            yield process

    @contextmanager
    def process(self, *args: str, ready: str | None = None) -> Iterator[subprocess.Popen[str]]:
        """``ledger ARGS`` in the background; waits for ``ready`` in its output if given."""
        assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
        log = (self.cwd / f"{args[0]}-{time.monotonic_ns()}.log").open("w+")
        process = subprocess.Popen(
            [LEDGER, *args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            if ready is not None:
                wait_for(
                    lambda: ready in Path(log.name).read_text() or process.poll() is not None,
                    timeout=30,
                )
            assert process.poll() is None, Path(log.name).read_text()
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
            process.wait(10)
            log.close()
            output = Path(log.name).read_text()
            assert "Traceback" not in output, output


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Fleet]:
    env = environment({"LEDGER_DATA_DIR": str(tmp_path / "data")})
    settings = Settings.from_env(env)
    container = build(settings)
    try:
        yield Fleet(env, settings, container, tmp_path)
    finally:
        container.close()


def test_sigterm_finishes_short_jobs_and_reports_long_ones_interrupted(embedded: Fleet) -> None:
    short, long = embedded.enqueue([{"seconds": 0.5}, {"seconds": 60}])
    alive = embedded.cwd / "alive"
    with embedded.worker(
        "adapters.worker.examples:sleepy",
        "--concurrency",
        "2",
        "--grace",
        "1.5",
        "--health-file",
        str(alive),
    ) as process:
        wait_for(lambda: all(embedded.job(j).status == Status.IN_PROGRESS for j in (short, long)))
        assert time.time() - alive.stat().st_mtime < 15  # touched while the worker lives
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(15) == 0
        assert time.monotonic() - started < 8
    assert embedded.job(short).status == Status.COMPLETED
    job = embedded.job(long)
    # Requeued with the retry policy's backoff: scheduled until due (ADR 100).
    assert (job.status, job.last_error) == (Status.SCHEDULED, "worker shutting down")
    history = embedded.history(long)
    assert [type(e).__name__ for e in history][-2:] == ["Failed", "Requeued"]
    assert job.not_before is not None
    assert job.not_before > history[-1].timestamp


def test_sigterm_exits_past_a_plain_handler_that_ignores_cancellation(embedded: Fleet) -> None:
    (job_id,) = embedded.enqueue([{"seconds": 60}])
    with embedded.worker("tests.support.worker_handlers:stubborn", "--grace", "0.5") as process:
        wait_for(lambda: embedded.job(job_id).status == Status.IN_PROGRESS)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    assert embedded.job(job_id).last_error == "worker shutting down"


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("service", ["ledger serve", "separate parts"])
def test_a_killed_worker_s_job_is_recovered_by_the_other_worker(
    postgres_url: str, sqs_queues: SqsQueues, tmp_path: Path, service: str
) -> None:
    """The whole fleet as processes, on PostgreSQL and SQS (moto): ``ledger serve`` (or
    its parts as separate processes: projections, the dispatcher, the stale monitor) and
    two workers; one worker is killed with SIGKILL mid-job."""
    env = environment(
        {
            "DATABASE_URL": postgres_url,
            "SQS_QUEUE_URL": sqs_queues.queue_url,
            "SQS_DLQ_URL": sqs_queues.dlq_url,
            "STALE_THRESHOLD_MINUTES": "0.05",  # 3 s: heartbeats every 0.75 s
            "CHECK_INTERVAL_SECONDS": "0.5",
            "RETRY_BASE_DELAY_SECONDS": "0",
            "RETRY_MAX_DELAY_SECONDS": "0",
        }
    )
    settings = Settings.from_env(env)
    container = build(settings)
    fleet = Fleet(env, settings, container, tmp_path)
    handler = "adapters.worker.examples:sleepy"
    try:
        with contextlib.ExitStack() as parts:
            if service == "ledger serve":
                parts.enter_context(fleet.process("serve", "--port", "0"))
            else:
                parts.enter_context(fleet.process("projections", "run", "--poll-interval", "0.1"))
                parts.enter_context(fleet.process("monitor", "dispatch"))
                parts.enter_context(fleet.process("monitor", "stale"))
            doomed = parts.enter_context(fleet.worker(handler, "--concurrency", "2"))
            survivor = parts.enter_context(fleet.worker(handler, "--concurrency", "2"))
            ids = [
                container.ledger.execute(
                    EnqueueJob(customer_id="acme", payload={"seconds": 2.0}), utc_now()
                ).job_id
                for _ in range(6)
            ]
            doomed_id = f":{doomed.pid}:"

            def held_by_doomed() -> list[UUID]:
                return [
                    j
                    for j in ids
                    if fleet.job(j).status == Status.IN_PROGRESS
                    and doomed_id in (fleet.job(j).worker_id or "")
                ]

            wait_for(lambda: bool(held_by_doomed()))
            doomed.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            orphans = held_by_doomed()
            wait_for(lambda: all(fleet.job(j).status == Status.COMPLETED for j in ids), timeout=60)
            recovery = time.monotonic() - killed_at
            assert survivor.poll() is None
        assert orphans
        for job_id in orphans:
            events = fleet.history(job_id)
            names = [type(e).__name__ for e in events]
            assert "StaleDetected" in names, names
            assert names[-1] == "Completed", names
            done = events[-1]
            assert isinstance(done, Job.Completed)
            assert doomed_id not in done.worker_id
        assert recovery < 30
        print(f"orphans {len(orphans)}, all done {recovery:.1f}s after the kill")
    finally:
        container.close()
