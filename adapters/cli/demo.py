"""``ledger demo``: a small fleet on the embedded default, in under a minute.

Everything is real: the ledger on SQLite under ``LEDGER_DATA_DIR``, the local queue in the
same file, the projection runner, the dispatcher, the stale and dead-letter monitors, and
workers running the SDK. Only the clocks are short (a 2-second stale threshold). One
worker runs as its own process and is killed with SIGKILL mid-job; the stale policy
recovers its job. A poison job fails until it is dead-lettered, its alert is shown as it
would be posted, and it is redriven.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.cli.demo_handlers import work
from adapters.cli.timeline import timeline_table
from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import Container, build_transport, utc_now
from adapters.service.parts import dead_letter_part, dispatcher_part, projection_part, stale_part
from adapters.service.settings import Settings
from adapters.worker import InProcessLedger, Worker, WorkerConfig
from ledger.commands import EnqueueJob, RedriveJob
from ledger.job import Job
from ledger.policies.alerts import Delivered, DeliveryOutcome
from ledger.status import Status
from projections.queries.job_status import JobStatusQueries
from projections.queries.lag import view_status
from projections.registry import VIEWS
from projections.timeline import event_record

HANDLER = "adapters.cli.demo_handlers:work"
CUSTOMERS = ("acme", "globex", "initech", "umbrella")
DEMO_CLOCKS = {
    "stale_threshold_minutes": 2 / 60,  # 2 s without a heartbeat: stale
    "check_interval_seconds": 0.5,
    "dlq_check_interval_seconds": 1.0,
    "retry_base_delay_seconds": 0.3,
    "retry_max_delay_seconds": 1.0,
    "alert_group_wait_seconds": 1.0,
}


@dataclass
class DemoReport:
    """What ``ledger demo --json`` prints."""

    store: str
    jobs: int
    counts: dict[str, int]
    killed_worker: dict[str, Any]
    recovery: dict[str, Any]
    dead_lettered_job: str
    alert: dict[str, Any]
    redriven: bool
    history: list[dict[str, Any]]
    projections: list[dict[str, Any]]
    health: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)


def demo_settings(settings: Settings) -> Settings:
    return replace(settings, **DEMO_CLOCKS)  # type: ignore[arg-type]


def run_demo(container: Container, console: Console, *, jobs: int = 36) -> DemoReport:
    return anyio.run(_Demo(container, console, jobs).run)


class _Demo:
    def __init__(self, container: Container, console: Console, jobs: int) -> None:
        self.container = container
        self.ledger = container.ledger
        self.settings = container.settings
        self.console = console
        self.total = jobs
        self.sink = _ShownAlerts()
        self.started = time.monotonic()
        self.ids: list[UUID] = []  # this run's jobs (the store may hold earlier runs' too)
        self.completed: set[UUID] = set()

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.print(f"[dim]{elapsed:5.1f}s[/] {message}", highlight=False)

    async def run(self) -> DemoReport:
        store = self.container.backend.describe()
        self.say(f"[bold]job-ledger demo[/] on {store}; stale threshold "
                 f"{self.settings.stale_threshold.total_seconds():g}s")
        transport = build_transport(self.settings, self.container.backend)
        writer = BatchWriter(self.ledger, utc_now).start()
        self.views = self.container.backend.open_views()  # one session for the demo's own reads
        try:
            async with anyio.create_task_group() as tg:
                for part in (
                    projection_part(self.container, poll_interval=0.1),
                    dispatcher_part(self.container, transport),
                    stale_part(self.container),
                    dead_letter_part(self.container, None, self.sink, "slack (shown here)"),
                ):
                    await tg.start(part)
                report = await self._story(tg, writer)
                tg.cancel_scope.cancel()
        finally:
            writer.close()
            self.views.close()
            with anyio.CancelScope(shield=True):
                await transport.aclose()
        return report

    async def _story(self, tg: Any, writer: BatchWriter) -> DemoReport:
        slow, killed = await self._kill_a_worker_mid_job()
        poison = self._enqueue_the_rest()
        workers = [self._worker(writer, n) for n in range(3)]
        for worker in workers:
            await tg.start(worker.run)
        self.say(f"3 workers (concurrency 2 each) are processing {self.total} jobs")
        recovery = await self._wait_for_everything(slow, killed, poison)
        for worker in workers:
            worker.drain()
        await self._wait(lambda: self._lag() == 0, 15)
        return await self._report(slow, killed, recovery, poison)

    # -- the story ------------------------------------------------------------------------

    async def _kill_a_worker_mid_job(self) -> tuple[UUID, dict[str, Any]]:
        slow = self.ledger.execute(
            EnqueueJob(customer_id="acme", payload={"seconds": 30, "retry_seconds": 0.5},
                       idempotency_key=_key("slow")),
            utc_now(),
        ).job_id
        self.ids.append(slow)
        process = subprocess.Popen(
            [sys.executable, "-c", "from adapters.cli.app import main; main()", "worker",
             "--handler", HANDLER, "--concurrency", "1"],
            env=_demo_env(self.settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.say(f"started worker process {process.pid}; it claims job {_short(slow)} "
                 "(30 s of work)")
        try:
            await self._wait(lambda: self._heartbeats(slow) >= 2, 45)
        except TimeoutError:
            process.kill()
            raise
        job = self.ledger.get_job(slow)
        os.kill(process.pid, signal.SIGKILL)
        killed_at = utc_now()
        process.wait(10)
        self.say(f"[red]killed worker {job.worker_id} with SIGKILL[/] mid-job, after "
                 f"{job.heartbeats} heartbeats")
        return slow, {"pid": process.pid, "worker_id": job.worker_id,
                      "killed_at": killed_at.isoformat(), "job_id": str(slow)}

    def _enqueue_the_rest(self) -> UUID:
        poison = UUID(int=0)
        commands = []
        for n in range(self.total - 1):
            payload: dict[str, Any] = {"seconds": 0.05 + (n % 5) * 0.05}
            if n == 7:
                payload = {"poison": True, "fail_until": 3}
            commands.append(EnqueueJob(customer_id=CUSTOMERS[n % len(CUSTOMERS)], payload=payload,
                                       max_attempts=3, idempotency_key=_key(f"job-{n}")))
        results = self.ledger.execute_batch(commands, utc_now())
        for n, result in enumerate(results):
            assert not isinstance(result, Exception), result
            self.ids.append(result.job_id)
            if n == 7:
                poison = result.job_id
        self.say(f"enqueued {len(commands)} more jobs for {', '.join(CUSTOMERS)} in one "
                 f"transaction; job {_short(poison)} is poison (fails until redriven)")
        return poison

    def _worker(self, writer: BatchWriter, n: int) -> Worker:
        config = replace(WorkerConfig.for_settings(self.settings), concurrency=2,
                         worker_id=f"demo-worker-{n + 1}", receive_wait=0.5, grace=2.0)
        return Worker(work, build_transport(self.settings, self.container.backend),
                      InProcessLedger(self.ledger, writer=writer), config)

    async def _wait_for_everything(self, slow: UUID, killed: dict[str, Any], poison: UUID
                                   ) -> dict[str, Any]:
        recovery: dict[str, Any] = {}
        redriven = False
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=True) as progress:
            task = progress.add_task("jobs finished", total=self.total)
            deadline = time.monotonic() + 50
            while time.monotonic() < deadline:
                counts = self._counts()
                progress.update(task, completed=counts.get("completed", 0)
                                + counts.get("dead_lettered", 0))
                if not recovery and (found := self._recovered(slow, killed)):
                    recovery = found
                    self.say(f"[green]recovered[/] job {_short(slow)}: stale after "
                             f"{found['stale_after_seconds']:.1f}s, completed by "
                             f"{found['completed_by']} {found['completed_after_seconds']:.1f}s "
                             "after the kill")
                if not redriven and self._alerted(poison):
                    self._show_alert()
                    self.ledger.execute(RedriveJob(job_id=poison, actor="demo-operator"),
                                        utc_now())
                    redriven = True
                    self.say(f"redrove {_short(poison)}: a fresh attempt budget")
                done = counts.get("completed", 0) == self.total
                if done and recovery and redriven:
                    break
                await anyio.sleep(0.2)
        return recovery

    # -- reading ----------------------------------------------------------------------------

    def _heartbeats(self, job_id: UUID) -> int:
        return self.ledger.get_job(job_id).heartbeats

    def _recovered(self, slow: UUID, killed: dict[str, Any]) -> dict[str, Any] | None:
        events = self.ledger.history(slow)
        stale = [e for e in events if isinstance(e, Job.StaleDetected)]
        done = [e for e in events if isinstance(e, Job.Completed)]
        if not (stale and done):
            return None
        killed_at = datetime.fromisoformat(killed["killed_at"])
        return {
            "stale_after_seconds": round((stale[0].timestamp - killed_at).total_seconds(), 2),
            "completed_after_seconds": round((done[0].timestamp - killed_at).total_seconds(), 2),
            "last_heartbeat_at": stale[0].last_heartbeat_at.isoformat(),
            "threshold_seconds": stale[0].threshold_seconds,
            "completed_by": done[0].worker_id,
        }

    def _alerted(self, job_id: UUID) -> bool:
        return self.ledger.get_job(job_id).alerted_version is not None and bool(self.sink.messages)

    def _show_alert(self) -> None:
        message = self.sink.messages[0]
        self.say("[yellow]dead-letter alert[/], as it would be posted to Slack:")
        for block in message["blocks"]:
            text = block.get("text", {}).get("text") or "  ".join(
                f["text"].replace("\n", " ") for f in block.get("fields", []))
            self.console.print(f"      {text}", markup=False, highlight=False)

    def _counts(self) -> dict[str, int]:
        """This run's jobs by status, from job_status (a job not in it yet is pending)."""
        queries = JobStatusQueries(self.views)
        counts: Counter[str] = Counter()
        for job_id in self.ids:
            if job_id in self.completed:  # for good: no need to read it again
                continue
            row = queries.get(job_id)
            status = row.status if row else "pending"
            if status == "completed":
                self.completed.add(job_id)
            else:
                counts[status] += 1
        counts["completed"] = len(self.completed)
        return {status: n for status, n in sorted(counts.items()) if n}

    def _lag(self) -> int:
        return max(s.lag for s in view_status(self.views, list(VIEWS.values())))

    async def _wait(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError("the demo waited too long")
            await anyio.sleep(0.1)

    async def _report(self, slow: UUID, killed: dict[str, Any], recovery: dict[str, Any],
                      poison: UUID) -> DemoReport:
        history = self.ledger.history(poison)
        self.console.print(timeline_table(history))
        counts = self._counts()
        lag = [msgspec.to_builtins(s) for s in view_status(self.views, list(VIEWS.values()))]
        health = await _health(self.container)
        self.say("jobs by status: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        self.say("projection lag: " + ", ".join(f"{v['view']}={v['lag']}" for v in lag))
        self.say("/health:")
        self.console.print_json(data=health)
        self.say(f"see a job's whole story: [bold]ledger jobs show {slow}[/]")
        return DemoReport(
            store=self.container.backend.name,
            jobs=self.total, counts=counts, killed_worker=killed, recovery=recovery,
            dead_lettered_job=str(poison),
            alert=self.sink.messages[0] if self.sink.messages else {},
            redriven=any(isinstance(e, Job.Redriven) for e in history),
            history=[event_record(e) for e in history], projections=lag, health=health,
            seconds=round(time.monotonic() - self.started, 1),
        )


class _ShownAlerts:
    """The demo's alert sink: keeps each message to show it (nothing is posted)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def post(self, message: dict[str, Any], attempt: int) -> DeliveryOutcome:
        self.messages.append(message)
        return Delivered()


async def _health(container: Container) -> dict[str, Any]:
    """The ``/health`` body, computed by the API's own health monitor (no server needed)."""
    from adapters.http.wiring import build_http

    monitor = build_http(container).monitor
    report = monitor.report(await monitor.check())
    body: dict[str, Any] = msgspec.to_builtins(report)
    return body


def _demo_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["LEDGER_DATA_DIR"] = str(settings.ledger_data_dir)
    for name, value in DEMO_CLOCKS.items():
        env[name.upper()] = str(value)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    return env


def _key(name: str) -> str:
    return f"demo-{os.getpid()}-{time.time_ns()}-{name}"


def _short(job_id: UUID) -> str:
    return str(job_id)[:8]


__all__ = ["DEMO_CLOCKS", "DemoReport", "Status", "demo_settings", "run_demo"]
