"""The ``ledger`` command line.

User errors (bad configuration, unknown job ids, refused commands) print one line on
stderr and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.archive import archive_app
from adapters.cli.asof import print_jobs_as_of
from adapters.cli.asof import register as register_as_of
from adapters.cli.audit import audit_command
from adapters.cli.console import cell, make_console
from adapters.cli.controls import (
    cancel_command,
    requeue_command,
    resume_action_command,
    retry_command,
)
from adapters.cli.errors import error_line, user_errors
from adapters.cli.job_asof import AS_OF_HELP, print_job_as_of
from adapters.cli.job_ids import job_ref, resolve_with
from adapters.cli.keys import keys_app
from adapters.cli.monitor import dlq_app, monitor_app, stale_app
from adapters.cli.options import names
from adapters.cli.projections import list_jobs, migrate_command, projections_app
from adapters.cli.queues import queues_app
from adapters.cli.replay import replay_app
from adapters.cli.schedules import schedules_app
from adapters.cli.serve import serve_command
from adapters.cli.timeline import timeline_table
from adapters.cli.worker import worker_command
from adapters.service.bootstrap import Container, build
from ledger.status import Status
from projections.timeline import event_record, job_summary

app = typer.Typer(
    name="ledger",
    help="job-ledger: an event-sourced ledger of background jobs that never get lost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="Inspect jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
jobs_app.command("cancel")(cancel_command)
jobs_app.command("retry")(retry_command)
jobs_app.command("requeue")(requeue_command)
jobs_app.command("resume-action")(resume_action_command)
app.add_typer(queues_app, name="queues")
app.add_typer(schedules_app, name="schedules")
app.add_typer(projections_app, name="projections")
register_as_of(projections_app)
app.command("migrate")(migrate_command)
app.add_typer(keys_app, name="keys")
app.add_typer(monitor_app, name="monitor")
app.add_typer(stale_app, name="stale")
app.add_typer(dlq_app, name="dlq")
app.add_typer(replay_app, name="replay")
app.command("serve")(serve_command)
app.command("worker")(worker_command)
app.command("audit")(audit_command)
app.add_typer(archive_app, name="archive")

console = make_console()


@contextmanager
def container() -> Iterator[Container]:
    wired = build()
    try:
        yield wired
    finally:
        wired.close()


@app.command()
@user_errors
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    jobs: Annotated[int, typer.Option(min=12, max=500, help="How many jobs.")] = 36,
) -> None:
    """Run a small fleet on the embedded default: a killed worker recovered, a dead letter
    alerted and redriven, then a report (counts, recovery, history, lag, /health)."""
    from adapters.cli.demo import demo_settings, run_demo
    from adapters.service.bootstrap import load_settings

    quiet = make_console(quiet=True) if as_json else console
    wired = build(demo_settings(load_settings()))
    try:
        report = run_demo(wired, quiet, jobs=jobs)
    finally:
        wired.close()
    if as_json:
        import dataclasses

        sys.stdout.write(json.dumps(dataclasses.asdict(report), indent=2, default=str) + "\n")


@jobs_app.command("show")
@user_errors
def jobs_show(
    job_ref: Annotated[str, typer.Argument(
        parser=job_ref, metavar="JOB_ID", help="The job's id, or its first digits.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
) -> None:
    """Show a job's state and its full history as a timeline (or the job as of a moment)."""
    with container() as wired:
        job_id = resolve_with(wired.backend, job_ref)
        if as_of is not None:
            print_job_as_of(wired, job_id, as_of, as_json, console)
            return
        job = wired.ledger.get_job(job_id)
        events = wired.ledger.history(job_id)
    summary = job_summary(job)
    if as_json:
        summary["history"] = [event_record(e) for e in events]
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        return
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        table.add_row(f"[bold]{key}[/]", cell(value))
    console.print(table)
    console.print(timeline_table(events))


@jobs_app.command("list")
@user_errors
def jobs_list(  # noqa: PLR0917 - typer options
    status: Annotated[Status | None, typer.Option(help="Only jobs in this status.")] = None,
    customer: Annotated[
        str | None, typer.Option(help="Only this customer's jobs.", callback=names)
    ] = None,
    queue: Annotated[
        str | None, typer.Option(help="Only jobs of this queue.", callback=names)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many jobs.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help=f"The list as it was then: {AS_OF_HELP}")
    ] = None,
) -> None:
    """List jobs, oldest first, with optional filters (from the job_status view)."""
    if as_of is not None:
        print_jobs_as_of(as_of, status=None if status is None else str(status),
                         customer=customer, queue=queue, limit=limit, as_json=as_json)
        return
    with container() as wired:
        jobs = list_jobs(
            wired.backend, status=status, customer_id=customer, queue=queue, limit=limit
        )
    rows = [job.to_dict() for job in jobs]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    columns = ("job_id", "customer_id", "queue", "status", "attempt", "enqueued_at")
    table = Table(title=f"{len(rows)} jobs")
    for column in columns:
        wide = column == "job_id"
        table.add_column(column, no_wrap=wide, min_width=36 if wide else None)
    for row in rows:
        table.add_row(*(cell(row[c]) for c in columns))
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: usage errors are one line too (exit status 2)."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="ledger", standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        error_line("aborted")
        sys.exit(130)
    except Exception as error:
        # Click's usage errors (typer vendors click in some versions, so match by shape).
        if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
            raise
        ctx = getattr(error, "ctx", None)
        hint = f" (try '{ctx.command_path} --help')" if ctx is not None else ""
        error_line(f"{error.format_message()}{hint}")
        sys.exit(error.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)  # click hands back typer.Exit's code when not standalone
