"""``ledger monitor stale|dlq|dispatch``, ``ledger stale scan`` and ``ledger dlq list|redrive``."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable
from typing import Annotated
from uuid import UUID

import anyio
import typer
from rich.table import Table

from adapters.cli.console import cell, make_console
from adapters.cli.errors import PROGRAM, reported, user_errors
from adapters.cli.job_ids import checked, resolve
from adapters.cli.options import names
from adapters.cli.projections import wired_views
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.monitors import StaleMonitor
from adapters.service.parts import (
    Part,
    alert_sink,
    dead_letter_part,
    dispatcher_part,
    owner_name,
    stale_part,
)
from adapters.tracing import configure_logging, observe
from ledger.commands import RedriveJob
from ledger.errors import IllegalTransition, InvalidCommand
from ledger.ports.transport import Transport
from projections.queries.dead_letter_alerts import DeadLetterAlertQueries
from projections.queries.job_status import JobStatusQueries
from projections.registry import VIEWS
from projections.runner import catch_up_unfed

monitor_app = typer.Typer(help="Run one policy as its own long-running process.",
                          no_args_is_help=True)
stale_app = typer.Typer(help="The stale-job policy.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-lettered jobs.", no_args_is_help=True)
console = make_console()


def _logging() -> None:
    with reported(PROGRAM):  # LOG_FORMAT=json: one JSON object per line (ADR 125)
        configure_logging(logging.INFO)


def run_parts(make: Callable[[Container, Transport | None], list[Part]], *, transport: bool
              ) -> None:
    """Run parts until SIGINT/SIGTERM, then shut them down cleanly."""
    _logging()
    container = build()

    async def main() -> None:
        queue = build_transport(container.settings, container.backend) if transport else None
        try:
            async with anyio.create_task_group() as tg:
                for part in make(container, queue):
                    await tg.start(part)
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        tg.cancel_scope.cancel()
                        break
        finally:
            if queue is not None:
                with anyio.CancelScope(shield=True):
                    await queue.aclose()

    try:
        anyio.run(main)
    finally:
        container.close()


@monitor_app.command("stale")
@user_errors
def monitor_stale() -> None:
    """Every CHECK_INTERVAL_SECONDS, requeue (or dead-letter) jobs with no recent heartbeat."""
    run_parts(lambda c, _: [stale_part(c)], transport=False)


@monitor_app.command("dlq")
@user_errors
def monitor_dlq() -> None:
    """Record the transport's dead letters and alert each dead-lettered job once."""

    def make(container: Container, queue: Transport | None) -> list[Part]:
        sink, channel = alert_sink(container)
        return [dead_letter_part(container, queue, sink, channel)]

    run_parts(make, transport=True)


@monitor_app.command("dispatch")
@user_errors
def monitor_dispatch() -> None:
    """Send enqueued, requeued and redriven jobs to the transport, from the log."""

    def make(container: Container, queue: Transport | None) -> list[Part]:
        assert queue is not None
        return [dispatcher_part(container, queue)]

    run_parts(make, transport=True)


@stale_app.command("scan")
@user_errors
def stale_scan(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Scan once for stale jobs: requeue them (or, with --dry-run, say what would happen)."""
    with wired_views() as (container, store):
        catch_up_unfed(store, [VIEWS["job_status"]])
        monitor = StaleMonitor(store, container.ledger, container.settings, clock=utc_now,
                               detected_by=owner_name("stale-scan"))
        findings = monitor.findings()
        report = None if dry_run else monitor.scan()
    rows = [
        {"job_id": str(f.job.job_id), "customer_id": f.job.customer_id, "queue": f.job.queue,
         "attempt": f.job.attempt, "worker_id": f.job.worker_id,
         "silent_seconds": round(f.silent_for.total_seconds(), 1), "action": f.action}
        for f in findings
    ]
    if as_json:
        out = {"dry_run": dry_run, "stale": rows}
        if report is not None:
            out |= {"requeued": report.requeued, "dead_lettered": report.dead_lettered,
                    "moved_on": report.not_stale}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    verb = "would" if dry_run else "will"
    table = Table(title=f"{len(rows)} stale job(s): what the policy {verb} do")
    for column in ("job_id", "customer_id", "attempt", "worker_id", "silent_seconds", "action"):
        table.add_column(column, no_wrap=column == "job_id")
    for row in rows:
        table.add_row(*(cell(row[c]) for c in (
            "job_id", "customer_id", "attempt", "worker_id", "silent_seconds", "action")))
    console.print(table)
    if report is not None:
        console.print(f"requeued {report.requeued}, dead-lettered {report.dead_lettered}, "
                      f"moved on meanwhile {report.not_stale}")


@dlq_app.command("list")
@user_errors
def dlq_list(
    customer: Annotated[
        str | None, typer.Option(help="Only this customer's jobs.", callback=names)
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Dead-lettered jobs, with the state of their alert."""
    with wired_views() as (_, store):
        catch_up_unfed(store, [VIEWS["job_status"], VIEWS["dead_letter_alerts"]])
        jobs = JobStatusQueries(store).dead_lettered(customer_id=customer, limit=limit)
        alerts = DeadLetterAlertQueries(store)
        rows = []
        for job in jobs:
            latest = alerts.for_job(job.job_id)
            alert = latest[-1] if latest else None
            rows.append({
                "job_id": str(job.job_id), "customer_id": job.customer_id, "queue": job.queue,
                "attempts": job.attempt, "last_error": job.last_error,
                "dead_lettered_at": job.finished_at.isoformat() if job.finished_at else None,
                "source": alert.source if alert else None,
                "alert": alert.alert_status if alert else "pending",
            })
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} dead-lettered job(s)")
    for column in ("job_id", "customer_id", "attempts", "dead_lettered_at", "alert",
                   "last_error"):
        table.add_column(column, no_wrap=column == "job_id", overflow="fold")
    for row in rows:
        table.add_row(*(cell(row[c]) for c in (
            "job_id", "customer_id", "attempts", "dead_lettered_at", "alert", "last_error")))
    console.print(table)


@dlq_app.command("redrive")
@user_errors
def dlq_redrive(
    job_ids: Annotated[list[str] | None, typer.Argument(
        metavar="[JOB_ID]...", help="Jobs to redrive (ids, or their first digits).")] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Every dead-lettered job.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
    actor: Annotated[
        str, typer.Option(help="Who redrives (recorded).", callback=names)
    ] = "cli",
) -> None:
    """Give dead-lettered jobs a fresh attempt budget; the dispatcher re-sends each once."""
    if bool(job_ids) == all_jobs:
        raise InvalidCommand("name the jobs to redrive, or pass --all (not both)")
    refs = [_job_ref(value) for value in job_ids or []]
    with wired_views() as (container, store):
        ids = [resolve(store, ref) for ref in refs]
        if all_jobs:
            catch_up_unfed(store, [VIEWS["job_status"]])
            ids = [j.job_id for j in JobStatusQueries(store).dead_lettered(limit=100_000)]
        redriven, skipped = _redrive(container, ids, actor, dry_run)
    for line in skipped:
        console.print(f"skipped {line}", markup=False, highlight=False)
    verb = "would redrive" if dry_run else "redrove"
    console.print(f"{verb} {len(redriven)} job(s)" + (": " + ", ".join(redriven) if redriven
                                                       else ""), markup=False, highlight=False)


def _redrive(container: Container, ids: list[UUID], actor: str, dry_run: bool
             ) -> tuple[list[str], list[str]]:
    redriven: list[str] = []
    skipped: list[str] = []
    now = utc_now()
    for job_id in ids:
        job = container.ledger.get_job(job_id)
        if job.status != "dead_lettered":
            skipped.append(f"{job_id}: {job.status}, not dead-lettered")
            continue
        if dry_run:
            redriven.append(str(job_id))
            continue
        command = RedriveJob(job_id=job_id, actor=actor)
        try:
            outcome = container.ledger.execute(command, now)
        except IllegalTransition as error:  # redriven meanwhile by someone else
            skipped.append(f"{job_id}: {error}")
            continue
        observe([command], [outcome])
        redriven.append(str(job_id))
    return redriven, skipped


def _job_ref(value: str) -> str:
    try:
        return checked(value)
    except ValueError as error:
        raise InvalidCommand(str(error)) from None


__all__ = ["dlq_app", "monitor_app", "run_parts", "stale_app"]
