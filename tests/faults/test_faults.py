"""Fault injection: the fleet as processes on PostgreSQL, faults on a seeded schedule, and
at the end ``ledger audit`` passes and no job the API acknowledged (2xx) is lost.

The fleet: ``ledger serve --api-only`` (on a free port of 127.0.0.1, a ``service`` key made
with ``ledger keys create``), ``ledger projections run``, ``ledger monitor
dispatch|stale|dlq`` and three ``ledger worker`` processes, with the local queue on
PostgreSQL or SQS (moto's server on 127.0.0.1: queue and DLQ, maxReceiveCount 3,
visibility 1 s; the fleet reaches it through a TCP proxy, ``tests/support/tcp_proxy.py``),
supervised: a process that exits is started again, as compose's restart policy would.
Alerts go to a Slack-shaped receiver on 127.0.0.1.

Jobs are enqueued over HTTP (``POST /jobs`` with an idempotency key; a connection error,
a 5xx or a 429 is retried with the same key; acknowledged means answered 2xx) while these
faults are injected:

- ``kill_worker``: kill -9 of a worker, one holding a job in progress when there is one;
- ``kill_runner``, ``kill_monitor``: kill -9 of the projection runner, of a monitor;
- ``pg_restart``: a PostgreSQL restart under load (at least one while the HTTP enqueues
  flow; skipped when the server can't be restarted);
- ``slack_errors``: the receiver answers 429 (Retry-After), 500, 503, 429 to its next posts;
- ``duplicate_delivery``: copies of messages already sent, for jobs in progress and jobs
  completed, sent straight to the queue as an at-least-once queue would deliver them
  (built by the dispatcher's own ``message_for``, ``tests/support/duplicates.py``);
- ``sqs_down`` (SQS only): the proxy refuses connections and cuts the open ones for 3 s,
  then serves again on the same port; moto keeps running and keeps its queues.

Small size by default (CI, well under two minutes per transport); larger alone::

    FAULTS_JOBS=2000 FAULTS_SEED=20261128 pytest -s tests/faults -o timeout=900

The report (HTTP acknowledgements and retries, faults, process restarts, duplicates
injected, recoveries, duplicate executions, refused late reports, alerts, lost) is printed
and, with ``FAULTS_REPORT=path``, written as JSON (``{transport}`` in the path is replaced
by ``local`` or ``sqs``).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import httpx
import pytest

from adapters.service.audit import audit_log
from adapters.service.backend import backend_for
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from ledger.audit import COMPLETED, DEAD_LETTERED
from projections.queries.job_status import JobStatusQueries
from projections.registry import VIEWS
from tests.e2e.test_worker_processes import LEDGER, environment
from tests.support.duplicates import Duplicator
from tests.support.moto_patches import serialize_sqs_deletes
from tests.support.pg import PostgresServer
from tests.support.slack_receiver import Answer, SlackReceiver
from tests.support.tcp_proxy import TcpProxy

JOBS = int(os.environ.get("FAULTS_JOBS", "200"))
SEED = int(os.environ.get("FAULTS_SEED", "20261128"))
WORKERS = 3
POISON_SHARE = 0.03
HANDLER = "tests.faults.handlers:counted"
SQS_OUTAGE_SECONDS = 3.0
DUPLICATES_IN_PROGRESS = 3
"""Per ``duplicate_delivery`` fault: copies of messages of jobs in progress ..."""
DUPLICATES_COMPLETED = 3
"""... and of jobs already completed."""


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
    acknowledged_2xx: int = 0
    http_retries: Counter[str] = field(default_factory=Counter)
    """Enqueue requests answered otherwise than 2xx, then sent again with the same key."""
    faults: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    pg_restarts_during_http_enqueues: int = 0
    duplicates_in_progress: int = 0
    duplicates_completed: int = 0
    runs_before_duplicate: dict[str, int] = field(default_factory=dict)
    """Handler runs of each completed job when a duplicate of its message was sent."""


def fleet(env: dict[str, str], cwd: Path, api_port: int) -> list[Supervised]:
    parts = [
        Supervised("projections", ["projections", "run", "--poll-interval", "0.1"], env, cwd),
        Supervised("dispatch", ["monitor", "dispatch"], env, cwd),
        Supervised("stale", ["monitor", "stale"], env, cwd),
        Supervised("dlq", ["monitor", "dlq"], env, cwd),
        Supervised("api", ["serve", "--api-only", "--port", str(api_port),
                           "--log-level", "warning"], env, cwd),
    ]
    parts += [
        Supervised(f"worker-{i}", ["worker", "--handler", HANDLER, "--concurrency", "4",
                                   "--log-level", "warning"], env, cwd)
        for i in range(WORKERS)
    ]
    return parts


def schedule(
    rng: random.Random, duration: float, restartable: bool, sqs: bool = False
) -> list[tuple[float, str]]:
    """Faults at seeded times over ``duration``: each kind at least once, more when larger.
    ``sqs_down`` only on SQS (``sqs``)."""
    kinds = ["kill_worker", "kill_worker", "kill_runner", "kill_monitor", "slack_errors",
             "duplicate_delivery"]
    if restartable:
        kinds.append("pg_restart")
    if sqs:
        kinds.append("sqs_down")
    extra = max(0, JOBS // 250 - 1)
    kinds += rng.choices(["kill_worker", "kill_runner", "kill_monitor", "slack_errors",
                          "duplicate_delivery"], k=extra)
    if restartable:
        kinds += ["pg_restart"] * (JOBS // 1000)
    if sqs:
        kinds += ["sqs_down"] * (JOBS // 1000)
    rng.shuffle(kinds)
    step = duration / (len(kinds) + 1)
    return [(step * (i + 1) + rng.uniform(-step / 4, step / 4), k) for i, k in enumerate(kinds)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def via(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))


def create_key(env: dict[str, str], cwd: Path) -> str:
    """A ``service`` API key, made with ``ledger keys create`` (printed on its last line)."""
    assert LEDGER is not None
    made = subprocess.run(
        [LEDGER, "keys", "create", "--role", "service"], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def wait_for_api(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the API at {url} did not come up"
        time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.parametrize("transport", ["local", "sqs"])
def test_nothing_is_lost_under_faults(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path, transport: str,
    request: pytest.FixtureRequest,
) -> None:
    queues: dict[str, str] = {}
    direct: dict[str, str] = {}  # the fleet's variables, but SQS without the proxy
    proxy: TcpProxy | None = None
    if transport == "sqs":  # moto's SQS on 127.0.0.1, the fleet reaching it through a proxy
        sqs = request.getfixturevalue("sqs_queues")
        serialize_sqs_deletes()  # moto drops a message sent during a delete otherwise
        moto = urlsplit(sqs.endpoint)
        assert moto.hostname is not None
        assert moto.port is not None
        proxy = TcpProxy((moto.hostname, moto.port)).__enter__()
        queues = {"SQS_QUEUE_URL": via(sqs.queue_url, proxy),
                  "SQS_DLQ_URL": via(sqs.dlq_url, proxy), "AWS_ENDPOINT_URL_SQS": proxy.url}
        direct = {"SQS_QUEUE_URL": sqs.queue_url, "SQS_DLQ_URL": sqs.dlq_url,
                  "AWS_ENDPOINT_URL_SQS": sqs.endpoint}
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
    build(settings).close()  # migrated before the fleet starts
    duplicator = Duplicator(Settings.from_env({**env, **direct}), {**env, **direct})
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    api_key = create_key(env, tmp_path)
    parts = fleet(env, tmp_path, api_port)
    figures = Figures(jobs=JOBS)
    acknowledged: dict[str, bool] = {}  # job id answered 2xx -> poison
    enqueuing = threading.Event()
    stop_supervisor = threading.Event()
    started = time.monotonic()

    def supervise() -> None:
        while not stop_supervisor.is_set():
            for part in parts:
                if part.revive():
                    figures.restarts[part.name] += 1
            time.sleep(0.2)

    def enqueue_all(duration: float) -> None:
        """POST /jobs for each job, with its idempotency key; a connection error, a 5xx or
        a 429 is retried with the same key. Acknowledged: answered 2xx."""
        pace = duration / JOBS
        enqueue_rng = random.Random(SEED + 1)
        auth = {"authorization": f"Bearer {api_key}"}
        enqueuing.set()
        with httpx.Client(base_url=api_url, headers=auth, timeout=10) as http:
            for i in range(JOBS):
                poison = enqueue_rng.random() < POISON_SHARE
                payload = ({"poison": True} if poison
                           else {"seconds": enqueue_rng.uniform(0.05, 0.4)})
                body = {"customer_id": f"c{i % 7}", "payload": payload,
                        "max_attempts": 2 if poison else 3,
                        "idempotency_key": f"faults-{SEED}-{i}"}
                deadline = time.monotonic() + 90
                while True:
                    try:
                        answer = http.post("/jobs", json=body)
                    except httpx.TransportError as error:  # the API restarting, or slow
                        figures.http_retries[type(error).__name__] += 1
                    else:
                        if answer.is_success:
                            break
                        assert answer.status_code >= 500 or answer.status_code == 429, (
                            f"enqueue answered {answer.status_code}: {answer.text}")
                        figures.http_retries[str(answer.status_code)] += 1
                    assert time.monotonic() < deadline, "enqueue kept failing for 90 s"
                    time.sleep(0.2)
                acknowledged[str(answer.json()["job_id"])] = poison
                time.sleep(pace)
        enqueuing.clear()

    def inject_duplicates() -> None:
        for _ in range(10):  # early in a run there may be no job in progress or done yet
            try:
                injected = duplicator.inject(rng, DUPLICATES_IN_PROGRESS, DUPLICATES_COMPLETED)
            except Exception:  # the database is restarting: this one is skipped
                figures.faults["duplicate_delivery_skipped"] += 1
                return
            if injected.total:
                break
            time.sleep(0.5)
        runs = run_counts(runs_file)
        for job_id in injected.completed:
            figures.runs_before_duplicate.setdefault(job_id, runs[job_id])
        figures.duplicates_in_progress += len(injected.in_progress)
        figures.duplicates_completed += len(injected.completed)

    workers = [p for p in parts if p.name.startswith("worker")]
    monitors = [p for p in parts if p.name in ("dispatch", "stale", "dlq")]
    outages: list[threading.Thread] = []

    def inject(kind: str) -> None:
        if kind == "kill_worker":  # wait a little for one to be busy (idle after sqs_down)
            deadline = time.monotonic() + 4
            while not (busy := busy_workers(settings, workers)) and time.monotonic() < deadline:
                time.sleep(0.2)
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
        elif kind == "sqs_down":  # refused and cut for a while; moto keeps its queues
            assert proxy is not None
            outage = threading.Thread(target=proxy.outage, args=(SQS_OUTAGE_SECONDS,))
            outage.start()
            outages.append(outage)
        elif kind == "duplicate_delivery":
            inject_duplicates()
        else:
            figures.pg_restarts_during_http_enqueues += enqueuing.is_set()
            postgres_server.restart("fast")

    duration = max(12.0, JOBS / 40)
    try:
        for part in parts:
            part.start()
        supervisor = threading.Thread(target=supervise, daemon=True)
        supervisor.start()
        wait_for_api(api_url)
        enqueuer = threading.Thread(target=enqueue_all, args=(duration,), daemon=True)
        enqueuer.start()
        t0 = time.monotonic()
        for at, kind in schedule(rng, duration, postgres_server.supports_restart,
                                 sqs=proxy is not None):
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            inject(kind)
            figures.faults[kind] += 1
        for outage in outages:
            outage.join()
        enqueuer.join(duration + 120)
        assert not enqueuer.is_alive(), "the enqueuer did not finish"
        figures.acknowledged_2xx = len(acknowledged)

        # Quiet: every acknowledged job completed or dead-lettered (and alerted), every
        # view and the dispatcher at the head.
        summary = wait_until_quiet(settings, acknowledged, 60 + JOBS / 20, transport)
        audited = run_audit(env, tmp_path)
        elapsed = time.monotonic() - started
    finally:
        stop_supervisor.set()
        for part in parts:
            part.stop()
        slack.__exit__()
        if proxy is not None:
            proxy.close()

    posted = Counter(
        job_id for post in slack.posts for job_id in acknowledged if job_id in json.dumps(post)
    )
    runs = run_counts(runs_file)
    healthy = [j for j, poison in acknowledged.items() if not poison]
    duplicates = sum(max(0, runs[j] - 1) for j in healthy)
    dead_jobs = {j for j, a in summary_jobs(settings, acknowledged).items() if a}
    rerun_after_duplicate = [
        j for j, before in figures.runs_before_duplicate.items() if runs[j] != before
    ]
    report = {
        "seed": SEED,
        "transport": transport,
        "jobs": JOBS,
        "acknowledged_2xx": figures.acknowledged_2xx,
        "http_enqueue_retries": dict(figures.http_retries),
        "pg_restarts_during_http_enqueues": figures.pg_restarts_during_http_enqueues,
        "faults": dict(figures.faults),
        "process_restarts": dict(figures.restarts),
        "sqs_proxy": None if proxy is None else {
            "outages": proxy.outages, "connections_cut": proxy.cut,
            "connections": proxy.connections,
        },
        "duplicate_deliveries_injected": {
            "in_progress": figures.duplicates_in_progress,
            "completed": figures.duplicates_completed,
        },
        "completed_jobs_run_again_after_a_duplicate": len(rerun_after_duplicate),
        "messages_dropped_as_duplicates_by_workers": worker_duplicates(tmp_path),
        "completed": summary["completed"],
        "dead_lettered": summary["dead_lettered"],
        "healthy_jobs_dead_lettered": sum(1 for j in healthy if j in dead_jobs),
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
    if os.environ.get("FAULTS_REPORT"):  # "{transport}" in the path: one file per transport
        path = Path(os.environ["FAULTS_REPORT"].replace("{transport}", transport))
        path.write_text(json.dumps(report, indent=2) + "\n")
    assert report["acknowledged_2xx"] == JOBS  # every key answered 2xx, each its own job
    assert report["lost"] == 0  # every 2xx-acknowledged job is in the log
    assert report["completed"] + report["dead_lettered"] == JOBS
    assert report["dead_lettered"] >= sum(1 for p in acknowledged.values() if p)
    assert summary["alerts"] == summary["dead_letters"]
    assert set(posted) == dead_jobs  # every alert recorded as sent reached the receiver
    assert sum(n for k, n in figures.faults.items() if k != "kill_worker_mid_job") >= 4
    assert figures.duplicates_in_progress + figures.duplicates_completed > 0
    assert not rerun_after_duplicate  # a duplicate of a completed job's message is refused
    if postgres_server.supports_restart:
        assert figures.pg_restarts_during_http_enqueues >= 1
    if proxy is not None:
        assert proxy.outages == figures.faults["sqs_down"] >= 1


def worker_duplicates(cwd: Path) -> int:
    """Messages the workers deleted because their job was not pending (injected copies and
    SQS's own redeliveries), from each worker's last line; a killed worker says nothing."""
    found = re.findall(r"(\d+) duplicate messages", "".join(
        log.read_text() for log in cwd.glob("worker-*.log")))
    return sum(int(n) for n in found)


def run_counts(runs_file: Path) -> Counter[str]:
    """Handler runs per job so far (the handler appends ``job_id attempt`` per run)."""
    return Counter(line.split()[0] for line in runs_file.read_text().splitlines() if line)


def busy_workers(settings: Settings, workers: list[Supervised]) -> list[Supervised]:
    """The workers that hold a job in progress now (by the pid in their worker id)."""
    try:
        store = backend_for(settings).open_views()
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
    settings: Settings, acknowledged: dict[str, bool], timeout: float,
    transport: str = "local",
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        summary = _summary(settings, acknowledged)
        if summary["quiet"]:
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"not quiet after {timeout:.0f}s: {summary}\n"
                                 + _stuck(settings, acknowledged, transport))
        time.sleep(0.5)


def summary_jobs(settings: Settings, acknowledged: dict[str, bool]) -> dict[str, bool]:
    """Each acknowledged job: whether it ended dead-lettered."""
    store = backend_for(settings).open_views()
    try:
        audits, *_ = audit_log(store)
    finally:
        store.close()
    return {j: j in audits and audits[j].status == DEAD_LETTERED for j in acknowledged}


def _summary(settings: Settings, acknowledged: dict[str, bool]) -> dict[str, int]:
    try:
        store = backend_for(settings).open_views()
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


def _stuck(settings: Settings, acknowledged: dict[str, bool], transport: str) -> str:
    """The history of a few jobs that did not finish (the failure message)."""
    store = backend_for(settings).open_views()
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
    if transport == "sqs":
        lines.append(moto_messages(stuck[:20]))
    return "\n".join(lines)


def moto_messages(job_ids: list[str]) -> str:
    """Where moto (in this process) holds the messages of ``job_ids``: queue, receives,
    visible or not (the failure message of the SQS variant)."""
    from moto.sqs.models import sqs_backends

    lines = []
    for account in sqs_backends.values():
        for backend in account.values():
            for queue in backend.queues.values():
                for message in list(queue._messages):
                    hit = next((j for j in job_ids if j in message.body), None)
                    if hit:
                        lines.append(
                            f"{hit} in {queue.name}: receives {message.approximate_receive_count}"
                            f", visible {message.visible}, delayed {message.delayed}")
    return "\n".join(lines) or "no message of these jobs in moto"


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
    first = schedule(random.Random(1), 20.0, restartable=True, sqs=True)
    assert first == schedule(random.Random(1), 20.0, restartable=True, sqs=True)
    assert {k for _, k in first} >= {"kill_worker", "kill_runner", "kill_monitor", "pg_restart",
                                    "slack_errors", "duplicate_delivery", "sqs_down"}
    assert "sqs_down" not in {k for _, k in schedule(random.Random(1), 20.0, restartable=True)}


def test_the_proxy_refuses_while_down_and_serves_again_on_the_same_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as target:
        stop = threading.Event()

        def echo() -> None:
            target.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = target.accept()
                except OSError:
                    continue
                with conn:
                    conn.sendall(conn.recv(100))

        server = threading.Thread(target=echo, daemon=True)
        server.start()
        with TcpProxy(target.getsockname()[:2]) as proxy:
            port = proxy.port
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"one")
                assert conn.recv(100) == b"one"
            proxy.down()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5)
            proxy.up()
            assert proxy.port == port
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"two")
                assert conn.recv(100) == b"two"
            assert (proxy.outages, proxy.connections) == (1, 2)
        stop.set()
        server.join(5)
