"""Fault injection: the fleet as processes on PostgreSQL, faults on a seeded schedule, and
at the end ``ledger audit`` passes and no acknowledged job is lost.

Alerts go to a Slack-shaped receiver on 127.0.0.1 that, as one of the faults, answers
429 (Retry-After), 500 and 503 for its next few posts.

The fleet: ``ledger projections run``, ``ledger monitor dispatch|stale|dlq`` and three
``ledger worker`` processes, with the local queue on PostgreSQL or SQS (moto's server on
127.0.0.1: queue and DLQ, maxReceiveCount 3, visibility 1 s), supervised: a process that
exits is started again, as compose's restart policy would. Jobs are enqueued through the
ledger while faults are injected: kill -9 of a worker mid-job, of the projection runner,
of a monitor, a PostgreSQL restart under load, and Slack refusing posts for a while.
Enqueues that fail during the restart are retried with their idempotency key (an
acknowledged enqueue is one that returned).

Small size by default (CI, well under two minutes); larger alone::

    FAULTS_JOBS=2000 FAULTS_SEED=7 pytest -s tests/faults -o timeout=800

The report (jobs, faults, recoveries, duplicate executions, refused late reports, alerts,
lost) is printed and, with ``FAULTS_REPORT=path``, written as JSON.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

import pytest

from adapters.audit import audit_log
from adapters.bootstrap import build, open_views, utc_now
from ledger.audit import COMPLETED, DEAD_LETTERED
from ledger.commands import EnqueueJob
from ledger.config import Settings
from projections.queries.job_status import JobStatusQueries
from projections.registry import VIEWS
from tests.e2e.test_worker_processes import LEDGER, environment
from tests.support.pg import PostgresServer
from tests.support.slack_receiver import Answer, SlackReceiver

JOBS = int(os.environ.get("FAULTS_JOBS", "200"))
SEED = int(os.environ.get("FAULTS_SEED", "20261128"))
WORKERS = 3
POISON_SHARE = 0.03
HANDLER = "tests.faults.handlers:counted"


class Supervised:
    """A ``ledger`` process, started again by the supervisor whenever it exits."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.args, self.env, self.cwd = name, args, env, cwd
        self.log: TextIO = (cwd / f"{name}.log").open("a")
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
        self.process = subprocess.Popen(
            [LEDGER, *self.args], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )
        self.starts += 1

    def kill9(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(10)

    def revive(self) -> bool:
        """Start it again if it exited; True if it did."""
        with self.lock:
            if self.process is not None and self.process.poll() is not None:
                self.start()
                return True
            return False

    def stop(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            self.log.close()


@dataclass
class Figures:
    jobs: int = 0
    acknowledged: int = 0
    enqueue_retries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)


def fleet(env: dict[str, str], cwd: Path) -> list[Supervised]:
    parts = [
        Supervised("projections", ["projections", "run", "--poll-interval", "0.1"], env, cwd),
        Supervised("dispatch", ["monitor", "dispatch"], env, cwd),
        Supervised("stale", ["monitor", "stale"], env, cwd),
        Supervised("dlq", ["monitor", "dlq"], env, cwd),
    ]
    parts += [
        Supervised(f"worker-{i}", ["worker", "--handler", HANDLER, "--concurrency", "4",
                                   "--log-level", "warning"], env, cwd)
        for i in range(WORKERS)
    ]
    return parts


def schedule(rng: random.Random, duration: float, restartable: bool) -> list[tuple[float, str]]:
    """Faults at seeded times over ``duration``: each kind at least once, more when larger."""
    kinds = ["kill_worker", "kill_worker", "kill_runner", "kill_monitor", "slack_errors"]
    if restartable:
        kinds.append("pg_restart")
    extra = max(0, JOBS // 250 - 1)
    kinds += rng.choices(["kill_worker", "kill_runner", "kill_monitor", "slack_errors"], k=extra)
    if restartable:
        kinds += ["pg_restart"] * (JOBS // 1000)
    rng.shuffle(kinds)
    step = duration / (len(kinds) + 1)
    return [(step * (i + 1) + rng.uniform(-step / 4, step / 4), k) for i, k in enumerate(kinds)]


@pytest.mark.postgres
@pytest.mark.parametrize("transport", ["local", "sqs"])
def test_nothing_is_lost_under_faults(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path, transport: str,
    request: pytest.FixtureRequest,
) -> None:
    queues: dict[str, str] = {}
    if transport == "sqs":  # moto's SQS on 127.0.0.1, the AWS variables pointing at it
        sqs = request.getfixturevalue("sqs_queues")
        queues = {"SQS_QUEUE_URL": sqs.queue_url, "SQS_DLQ_URL": sqs.dlq_url}
    rng = random.Random(SEED)
    slack = SlackReceiver().__enter__()
    runs_file = tmp_path / "runs.txt"
    runs_file.touch()
    env = environment({
        "DATABASE_URL": postgres_url,
        "STALE_THRESHOLD_MINUTES": "0.03",  # 1.8 s
        "CHECK_INTERVAL_SECONDS": "0.5",
        "DLQ_CHECK_INTERVAL_SECONDS": "0.5",
        "ALERT_GROUP_WAIT_SECONDS": "0.5",
        "RETRY_BASE_DELAY_SECONDS": "0.1",
        "RETRY_MAX_DELAY_SECONDS": "0.5",
        "FAULTS_RUNS_FILE": str(runs_file),
        "SLACK_WEBHOOK_URL": slack.url,
        **queues,
    })
    settings = Settings.from_env(env)
    container = build(settings)
    parts = fleet(env, tmp_path)
    figures = Figures(jobs=JOBS)
    acknowledged: dict[str, bool] = {}  # job id -> poison
    stop_supervisor = threading.Event()
    started = time.monotonic()

    def supervise() -> None:
        while not stop_supervisor.is_set():
            for part in parts:
                if part.revive():
                    figures.restarts[part.name] += 1
            time.sleep(0.2)

    def enqueue_all(duration: float) -> None:
        pace = duration / JOBS
        enqueue_rng = random.Random(SEED + 1)
        for i in range(JOBS):
            poison = enqueue_rng.random() < POISON_SHARE
            payload = {"poison": True} if poison else {"seconds": enqueue_rng.uniform(0.05, 0.4)}
            command = EnqueueJob(customer_id=f"c{i % 7}", payload=payload,
                                 max_attempts=2 if poison else 3,
                                 idempotency_key=f"faults-{SEED}-{i}")
            deadline = time.monotonic() + 60
            while True:
                try:
                    job_id = container.ledger.execute(command, utc_now()).job_id
                    break
                except Exception:  # the database is restarting: retry, same key
                    figures.enqueue_retries += 1
                    assert time.monotonic() < deadline, "enqueue kept failing for 60 s"
                    time.sleep(0.2)
            acknowledged[str(job_id)] = poison
            time.sleep(pace)

    duration = max(12.0, JOBS / 40)
    try:
        for part in parts:
            part.start()
        supervisor = threading.Thread(target=supervise, daemon=True)
        supervisor.start()
        enqueuer = threading.Thread(target=enqueue_all, args=(duration,), daemon=True)
        enqueuer.start()
        t0 = time.monotonic()
        workers = [p for p in parts if p.name.startswith("worker")]
        monitors = [p for p in parts if p.name in ("dispatch", "stale", "dlq")]
        for at, kind in schedule(rng, duration, postgres_server.supports_restart):
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            if kind == "kill_worker":
                busy = busy_workers(settings, workers)
                victim = rng.choice(busy or workers)
                victim.kill9()
                figures.faults["kill_worker_mid_job"] += bool(busy)
            elif kind == "kill_runner":
                parts[0].kill9()
            elif kind == "kill_monitor":
                rng.choice(monitors).kill9()
            elif kind == "slack_errors":  # the next posts are refused: retried later
                slack.script(Answer(429, headers={"Retry-After": "1"}), Answer(500),
                             Answer(503), Answer(429, headers={"Retry-After": "1"}))
            else:
                postgres_server.restart("fast")
            figures.faults[kind] += 1
        enqueuer.join(duration + 120)
        assert not enqueuer.is_alive(), "the enqueuer did not finish"
        figures.acknowledged = len(acknowledged)

        # Quiet: every acknowledged job completed or dead-lettered (and alerted), every
        # view and the dispatcher at the head.
        summary = wait_until_quiet(settings, acknowledged, timeout=60 + JOBS / 20)
        audited = run_audit(env, tmp_path)
        elapsed = time.monotonic() - started
    finally:
        stop_supervisor.set()
        for part in parts:
            part.stop()
        container.close()
        slack.__exit__()

    posted = Counter(
        job_id for post in slack.posts for job_id in acknowledged if job_id in json.dumps(post)
    )
    runs = Counter(line.split()[0] for line in runs_file.read_text().splitlines() if line)
    healthy = [j for j, poison in acknowledged.items() if not poison]
    duplicates = sum(max(0, runs[j] - 1) for j in healthy)
    report = {
        "seed": SEED,
        "transport": transport,
        "jobs": JOBS,
        "acknowledged": figures.acknowledged,
        "enqueue_retries": figures.enqueue_retries,
        "faults": dict(figures.faults),
        "process_restarts": dict(figures.restarts),
        "completed": summary["completed"],
        "dead_lettered": summary["dead_lettered"],
        "stale_recoveries": summary["stale_detected"],
        "handler_runs": sum(runs.values()),
        "duplicate_executions": duplicates,
        "jobs_run_more_than_once": sum(1 for j in healthy if runs[j] > 1),
        "late_reports_refused": audited["refused_reports"],
        "alerts_recorded": summary["alerts"],
        "slack_error_answers_served": 4 * figures.faults["slack_errors"] - len(slack.answers),
        "slack_posts": len(slack.posts),
        "dead_lettered_jobs_in_slack_posts": len(posted),
        "jobs_posted_to_slack_more_than_once": sum(1 for n in posted.values() if n > 1),
        "lost": summary["lost"],
        "audit_ok": audited["ok"],
        "audit_seconds": audited["seconds"],
        "seconds": round(elapsed, 1),
    }
    print("\nfault-injection report:", json.dumps(report, indent=2))
    if os.environ.get("FAULTS_REPORT"):
        Path(os.environ["FAULTS_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    assert report["lost"] == 0
    assert report["completed"] + report["dead_lettered"] == JOBS
    assert report["dead_lettered"] >= sum(1 for p in acknowledged.values() if p)
    assert summary["alerts"] == summary["dead_letters"]
    dead_jobs = {j for j, a in summary_jobs(settings, acknowledged).items() if a}
    assert set(posted) == dead_jobs  # every alert recorded as sent reached the receiver
    assert sum(n for k, n in figures.faults.items() if k != "kill_worker_mid_job") >= 4


def busy_workers(settings: Settings, workers: list[Supervised]) -> list[Supervised]:
    """The workers that hold a job in progress now (by the pid in their worker id)."""
    try:
        store = open_views(settings)
    except Exception:  # the database is restarting
        return []
    try:
        jobs = JobStatusQueries(store).find(status="in_progress", limit=1000)
    except Exception:
        return []
    finally:
        store.close()
    holders = {job.worker_id for job in jobs if job.worker_id}
    return [
        w for w in workers
        if w.process is not None and any(f":{w.process.pid}:" in h for h in holders)
    ]


def wait_until_quiet(
    settings: Settings, acknowledged: dict[str, bool], timeout: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        summary = _summary(settings, acknowledged)
        if summary["quiet"]:
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"not quiet after {timeout:.0f}s: {summary}\n"
                                 + _stuck(settings, acknowledged))
        time.sleep(0.5)


def summary_jobs(settings: Settings, acknowledged: dict[str, bool]) -> dict[str, bool]:
    """Each acknowledged job: whether it ended dead-lettered."""
    store = open_views(settings)
    try:
        audits, *_ = audit_log(store)
    finally:
        store.close()
    return {j: j in audits and audits[j].status == DEAD_LETTERED for j in acknowledged}


def _summary(settings: Settings, acknowledged: dict[str, bool]) -> dict[str, int]:
    try:
        store = open_views(settings)
    except Exception:  # the database may still be coming back
        return {"quiet": 0}
    try:
        audits, head, _, dispatched = audit_log(store)
        lagging = [v for v in VIEWS if store.tracking(v).position < head]
    finally:
        store.close()
    terminal = {COMPLETED, DEAD_LETTERED}
    present = [audits[j] for j in acknowledged if j in audits]
    lost = len(acknowledged) - len(present)
    done = [a for a in present if a.status in terminal]
    dead = [a for a in present if a.status == DEAD_LETTERED]
    alerts = sum(len(a.alerts) for a in present)
    dead_letters = sum(len(a.dead_letters) for a in present)
    summary = {
        "completed": sum(1 for a in present if a.status == COMPLETED),
        "dead_lettered": len(dead),
        "alerts": alerts,
        "dead_letters": dead_letters,
        "lost": lost,
        "stale_detected": sum(a.stale_detections for a in present),
        "lagging_views": len(lagging),
        "dispatch_lag": head - dispatched,
    }
    summary["quiet"] = int(
        lost == 0 and len(done) == len(acknowledged) and not lagging and dispatched >= head
        and alerts == dead_letters
    )
    return summary


def _stuck(settings: Settings, acknowledged: dict[str, bool]) -> str:
    """The history of a few jobs that did not finish (the failure message)."""
    store = open_views(settings)
    try:
        audits, *_ = audit_log(store)
    finally:
        store.close()
    stuck = [j for j in acknowledged
             if j not in audits or audits[j].status not in (COMPLETED, DEAD_LETTERED)]
    dead = [j for j in acknowledged if not acknowledged[j]
            and j in audits and audits[j].status == DEAD_LETTERED]
    container = build(settings)
    lines = []
    try:
        for job_id in stuck[:3] + dead[:2]:
            events = container.ledger.history(UUID(job_id))
            lines.append(f"{job_id}: " + ", ".join(
                f"{type(e).__name__}({getattr(e, 'attempt', '')} "
                f"{getattr(e, 'worker_id', '') or getattr(e, 'reason', '')})" for e in events
            ))
    finally:
        container.close()
    return "\n".join(lines)


def run_audit(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    assert LEDGER is not None
    done = subprocess.run(
        [LEDGER, "audit", "--json"], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert done.stdout, done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == 0, json.dumps(body["violations"][:20], indent=2) + done.stderr
    return body


def test_the_schedule_is_seeded_and_has_every_kind() -> None:
    first = schedule(random.Random(1), 20.0, restartable=True)
    assert first == schedule(random.Random(1), 20.0, restartable=True)
    assert {k for _, k in first} >= {"kill_worker", "kill_runner", "kill_monitor", "pg_restart"}
