"""End to end: jobs/s through enqueue, transport, worker and completion, and the time from
a killed worker to its job's requeue.

- The ledger: ``ledger serve`` (API, projection runner, dispatcher, monitors) and two
  ``ledger worker --handler adapters.worker.examples:noop`` processes on the local queue in
  PostgreSQL, all started and idle first; then this process enqueues N jobs (batches of
  500) and times until the log holds N ``Completed`` events: the figure includes the
  enqueue, the dispatch (log -> queue), the claim, the no-op, the completion, every one
  an event in the ledger.
- Procrastinate on the same server (its own database): N no-op jobs deferred first, then
  two worker processes with the same concurrency are released together and timed until
  N jobs succeeded (its figure leaves the defers out).
- Kill -> requeue: ``ledger serve`` with ``STALE_THRESHOLD_MINUTES=0.05`` (3 s) and
  ``CHECK_INTERVAL_SECONDS=0.5``; a worker takes a 60 s job and is killed with SIGKILL;
  timed from the kill to the ``Requeued`` event in the job's history.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.utils import get_topic
from psycopg import sql

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.log_order import head_function_name
from adapters.postgres.migrate import migrate
from adapters.service.bootstrap import utc_now
from bench import cpu_split, peer
from bench.common import Figure, fresh_database
from bench.http_api import free_port, profile, wait_ready
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.job import Job
from ledger.ports.queue_store import DEFAULT_QUEUE
from ledger.status import Status
from tests.support.pg import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
COMPLETED = get_topic(Job.Completed)
COUNT_TOPIC = sql.SQL(
    "SELECT count(*) FROM {t} WHERE notification_id > %s AND notification_id <= %s "
    "AND topic = %s"
).format(t=sql.Identifier(EVENTS_TABLE))
SETTLED = sql.SQL("SELECT {f}()").format(f=sql.Identifier(head_function_name(EVENTS_TABLE)))
HEAD = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {t}").format(
    t=sql.Identifier(EVENTS_TABLE)
)
POLL_SECONDS = 0.05
"""How often both sides' completions are counted, on one open connection each: only the
new part of the log is read (by its notification id index)."""
CONFIG = ("DATABASE_URL", "LEDGER_DATA_DIR", "STALE_THRESHOLD_MINUTES", "SQS_QUEUE_URL",
          "SQS_DLQ_URL", "SLACK_WEBHOOK_URL", "LEDGER_API_URL", "LEDGER_API_KEY")  # fmt: skip
LEDGER_E2E, PEER_E2E = "ledger, local queue on PostgreSQL", "Procrastinate worker"
KILL = "killed worker -> Requeued"


@dataclass(frozen=True)
class Size:
    jobs: int  # per run
    workers: int  # processes
    concurrency: int  # jobs at once per worker process
    seconds: float  # bound of one run
    repeats: int
    kills: int


FULL = Size(3000, 2, 8, 120.0, 3, 3)
QUICK = Size(400, 2, 8, 60.0, 1, 1)
TINY = Size(40, 1, 4, 60.0, 1, 1)


def environment(url: str, data: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({"DATABASE_URL": url, "LEDGER_DATA_DIR": str(data),
                "RETRY_BASE_DELAY_SECONDS": "0", "RETRY_MAX_DELAY_SECONDS": "0"})  # fmt: skip
    env.update(extra or {})
    return env


class Fleet:
    """``ledger`` processes on one database, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.stack = ExitStack()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def start(self, *args: str, ready: str | None = None) -> subprocess.Popen[bytes]:
        ledger = shutil.which("ledger") or "ledger"
        log = self.logs / f"{args[0]}-{time.monotonic_ns()}.log"
        out = log.open("wb")
        process = subprocess.Popen(
            [ledger, *args], env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.stack.callback(stop, process, out)
        if ready is not None:
            deadline = time.monotonic() + 60
            while ready not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ledger {args[0]} did not start:\n{log.read_text()}")
                time.sleep(0.05)
        return process

    def serve(self) -> subprocess.Popen[bytes]:
        port = free_port()
        process = self.start("serve", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning")  # fmt: skip
        wait_ready(port, process)
        return process

    def worker(self, handler: str, concurrency: int) -> subprocess.Popen[bytes]:
        return self.start("worker", "--handler", handler, "--concurrency", str(concurrency),
                          "--log-level", "warning", ready=" running ")  # fmt: skip


def stop(process: subprocess.Popen[bytes], out: Any) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    out.close()


@contextmanager
def ledger_database(server: PostgresServer) -> Iterator[tuple[str, Path]]:
    with fresh_database(server, "e2e") as url:
        data = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
        try:
            JobLedger(postgres_env(url)).close()
            migrate(url)
            yield url, data
        finally:
            shutil.rmtree(data, ignore_errors=True)


class CompletedCount:
    """``Completed`` events in the log after notification id ``head``, counted as the
    benchmark polls: each poll reads only the rows between the settled head of the
    poll before and today's (ADR 150: no row can still appear below a settled head), so
    the count costs the server each new row once. Counting every row after ``head`` on
    every poll read 441 rows per job in a 10,000-job burn-down, the server's CPU counted
    against the ledger (its Enqueued events, then its Claimed and Completed ones, over
    and over). A job is counted once the head settles past its event, never sooner."""

    def __init__(self, conn: psycopg.Connection[Any], head: int) -> None:
        self.conn, self.low, self.total = conn, head, 0

    def __call__(self) -> int:
        row = self.conn.execute(SETTLED).fetchone()
        settled = int(row[0] or 0) if row else 0
        if settled > self.low:
            counted = self.conn.execute(COUNT_TOPIC, (self.low, settled, COMPLETED)).fetchone()
            self.total += int(counted[0]) if counted else 0
            self.low = settled
        return self.total


def head_of(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(HEAD).fetchone()
    return int(row[0]) if row else 0


def ledger_runs(server: PostgresServer, size: Size, profiled: bool = False) -> Figure:
    figure = Figure(LEDGER_E2E, "jobs/s")
    with ledger_database(server) as (url, data), Fleet(environment(url, data), data) as fleet, \
            psycopg.connect(url, autocommit=True) as poll:
        served = fleet.serve()
        workers = [fleet.worker("adapters.worker.examples:noop", size.concurrency)
                   for _ in range(size.workers)]  # fmt: skip
        ledger = producer(url)
        window = cpu_split.Window(ledger_probes(url, served, workers))
        split = cpu_split.Split()
        try:
            for _ in range(size.repeats):
                window.start()
                wall = one_run(ledger, poll, size)
                split.add(window.stop(size.jobs, wall))
                figure.values.append(size.jobs / wall)
            figure.notes[cpu_split.NOTE] = split.note()
            if profiled:  # extra runs, not counted: the sampler takes CPU and stops the worker
                hot: list[list[tuple[str, float]]] = []
                spy = threading.Thread(target=lambda: hot.append(profile(workers[0].pid, 3.0)))
                spy.start()
                bound = time.monotonic() + 60
                while spy.is_alive() and time.monotonic() < bound:
                    one_run(ledger, poll, size)
                spy.join(60)
                if hot and hot[0]:
                    figure.notes["profile"] = "; ".join(name for name, _ in hot[0])
        finally:
            ledger.close()
    return figure


def one_run(ledger: JobLedger, poll: psycopg.Connection[Any], size: Size) -> float:
    """Enqueue ``size.jobs`` in batches of 500 and wait for their ``Completed`` events;
    the seconds from the first enqueue to the last completion counted."""
    head = head_of(poll)
    started = time.perf_counter()
    for first in range(0, size.jobs, 500):
        batch = [EnqueueJob(customer_id="bench", payload={"n": n})
                 for n in range(first, min(size.jobs, first + 500))]  # fmt: skip
        ledger.execute_batch(batch, utc_now())
    deadline = time.monotonic() + size.seconds
    completed = CompletedCount(poll, head)
    while (done := completed()) < size.jobs:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {size.jobs} jobs completed")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def producer(url: str) -> JobLedger:
    """The benchmark's client: a ledger that enqueues as ``LocalClient`` and the HTTP API
    do on PostgreSQL with the local queue, each job's message written with its event (the
    outbox, ADR 151, as ``build()`` sets it). Without it, ``ledger serve``'s dispatcher put
    every message after reading the event, a hop no user's enqueue takes."""
    ledger = JobLedger(postgres_env(url))
    ledger.outbox = DEFAULT_QUEUE
    return ledger


def ledger_probes(
    url: str, served: subprocess.Popen[bytes], workers: list[subprocess.Popen[bytes]]
) -> dict[str, cpu_split.Probe]:
    """The ledger's process groups: ``ledger serve``, the workers, PostgreSQL, this client."""
    return {"`ledger serve`": cpu_split.group([served.pid]),
            "workers": cpu_split.group(w.pid for w in workers),
            "PostgreSQL": cpu_split.postgres_probe(url),
            "the benchmark's client": cpu_split.own_seconds}  # fmt: skip


def peer_probes(url: str, workers: list[int]) -> dict[str, cpu_split.Probe]:
    """Procrastinate's groups; a worker that exited and was reaped counts in this
    process's children's time."""
    live = cpu_split.group(workers)

    def reaped() -> float:
        times = os.times()
        return times.children_user + times.children_system

    return {"workers": lambda: live() + reaped(), "PostgreSQL": cpu_split.postgres_probe(url),
            "the benchmark's client": cpu_split.own_seconds}  # fmt: skip


def peer_runs(server: PostgresServer, size: Size) -> Figure:
    figure = Figure(PEER_E2E, "jobs/s")
    context = multiprocessing.get_context("spawn")
    split = cpu_split.Split()
    for _ in range(size.repeats):
        with fresh_database(server, "peer") as url:
            peer.apply_schema(url)
            app = peer.make_app(url, 2)
            with app.open():
                task = app.tasks[peer.TASK]
                for first in range(0, size.jobs, 500):
                    jobs: list[dict[str, Any]] = [
                        {"n": n} for n in range(first, min(size.jobs, first + 500))
                    ]
                    task.batch_defer(*jobs)
            ready = context.Barrier(size.workers + 1)
            processes = [
                context.Process(target=peer.worker_process,
                                args=(url, size.concurrency, ready, size.seconds))
                for _ in range(size.workers)
            ]  # fmt: skip
            for p in processes:
                p.start()
            try:
                window = cpu_split.Window(peer_probes(url, [p.pid or 0 for p in processes]))
                with psycopg.connect(url, autocommit=True) as poll:
                    at_barrier(ready, size.workers, processes)
                    window.start()
                    ready.wait(120)
                    started = time.perf_counter()
                    deadline = time.monotonic() + size.seconds
                    while (done := peer.succeeded(poll)) < size.jobs:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"Procrastinate: {done} of {size.jobs} succeeded")
                        time.sleep(POLL_SECONDS)
                    wall = time.perf_counter() - started
                    split.add(window.stop(size.jobs, wall))
                    figure.values.append(size.jobs / wall)
            finally:
                for p in processes:
                    p.join(30)
                    if p.is_alive():
                        p.kill()
    figure.notes[cpu_split.NOTE] = split.note()
    return figure


def at_barrier(ready: Any, workers: int, processes: list[Any]) -> None:
    """Wait until every worker waits at ``ready`` (its start-up is not in the window)."""
    deadline = time.monotonic() + 120
    while ready.n_waiting < workers and time.monotonic() < deadline:
        if any(p.exitcode is not None for p in processes):
            return  # ready.wait() will say it
        time.sleep(0.01)


def kill_runs(server: PostgresServer, size: Size) -> Figure:
    figure = Figure(KILL, "s", notes={"threshold": "3 s", "check interval": "0.5 s"})
    extra = {"STALE_THRESHOLD_MINUTES": "0.05", "CHECK_INTERVAL_SECONDS": "0.5"}
    with ledger_database(server) as (url, data), Fleet(environment(url, data, extra),
                                                       data) as fleet:
        fleet.serve()
        ledger = JobLedger(postgres_env(url))
        jobs: list[UUID] = []
        try:
            for _ in range(size.kills):
                doomed = fleet.worker("adapters.worker.examples:sleepy", 1)
                jobs.append(ledger.execute(
                    EnqueueJob(customer_id="bench", payload={"seconds": 60}), utc_now()
                ).job_id)
                # The new worker may take the job requeued after the last kill: any will do.
                held = wait_held(ledger, jobs, f":{doomed.pid}:")
                doomed.send_signal(signal.SIGKILL)
                killed_at = utc_now()
                requeued = wait_requeued(ledger, held, killed_at, 30.0)
                figure.values.append((requeued - killed_at).total_seconds())
        finally:
            ledger.close()
    return figure


def wait_held(ledger: JobLedger, jobs: list[UUID], by: str, timeout: float = 30.0) -> UUID:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id in jobs:
            job = ledger.get_job(job_id)
            if job.status == Status.IN_PROGRESS and by in (job.worker_id or ""):
                return job_id
        time.sleep(0.02)
    raise RuntimeError("the doomed worker never took a job")


def wait_requeued(ledger: JobLedger, job_id: UUID, after: datetime, timeout: float) -> datetime:
    """When the job's first ``Requeued`` event after ``after`` was recorded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in ledger.history(job_id):
            if isinstance(event, Job.Requeued) and event.timestamp > after:
                return event.timestamp
        time.sleep(0.02)
    raise RuntimeError("the killed worker's job was not requeued")


def run(
    server: PostgresServer, size: Size, log: Callable[[str], Any] = print, *,
    profiled: bool = False,
) -> list[Figure]:
    figures = []
    measures: list[Callable[[], Figure]] = [
        lambda: ledger_runs(server, size, profiled),
        lambda: peer_runs(server, size),
        lambda: kill_runs(server, size),
    ]
    for measure in measures:
        cpu_split.settle(server.url)  # each side starts on a settled server and machine
        try:
            figure = measure()
        except Exception as error:  # the others still count
            log(f"end to end: FAILED: {type(error).__name__}: {error}")
            continue
        log(f"end to end: {figure.name}: {figure.spread()} {figure.unit} {figure.notes}")
        figures.append(figure)
    return figures
