"""``ledger jobs cancel|retry|requeue`` and ``ledger jobs resume-action`` (ADR 100).

Jobs are named by id (or an unambiguous prefix) or selected by a filter; a filter runs a
bulk action (recorded, in batches of 1,000, resumable). ``--dry-run`` prints the count
and a sample of ten and appends nothing. The actor recorded is ``cli:<OS user>``.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from adapters.cli.console import cell, make_console
from adapters.cli.errors import InvalidOptions, user_errors
from adapters.cli.job_ids import job_ref, resolve
from adapters.cli.projections import wired_views
from adapters.service.actions import ActionRunner, Preview, action_filter, command_for
from adapters.service.bootstrap import utc_now
from adapters.tracing import observe
from ledger.action import ActionKind, InvalidFilter, checked_reason
from ledger.errors import LedgerError
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from projections.store import ViewStore

console = make_console()

Ids = Annotated[list[str] | None, typer.Argument(
    parser=job_ref, metavar="[JOB_ID]...", help="Job ids, or their first digits.")]
StatusOpt = Annotated[str | None, typer.Option("--status", help="Only jobs in this status.")]
QueueOpt = Annotated[str | None, typer.Option("--queue", help="Only jobs of this queue.")]
CustomerOpt = Annotated[str | None, typer.Option("--customer", help="Only this customer's.")]
SinceOpt = Annotated[str | None, typer.Option(
    "--since", help="Enqueued at or after (ISO time with a zone).")]
UntilOpt = Annotated[str | None, typer.Option(
    "--until", help="Enqueued before (ISO time with a zone).")]
ErrorOpt = Annotated[str | None, typer.Option(
    "--error-contains", help="Only jobs whose last error holds this text.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Count and show ten; change nothing.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (recorded).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def cli_actor() -> str:
    """``cli:<OS user>`` (the uid when the user has no name)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def _time(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFilter(f"{option} {value!r} is not an ISO-8601 time") from None
    if moment.utcoffset() is None:
        raise InvalidFilter(f"{option} {value!r} needs a time zone (Z or +01:00)")
    return moment.isoformat()


def _filter_data(  # noqa: PLR0917 - one value per filter option
    status: str | None, queue: str | None, customer: str | None, since: str | None,
    until: str | None, error_contains: str | None,
) -> dict[str, Any]:
    given = {
        "status": status, "queue": queue, "customer_id": customer,
        "since": _time("--since", since), "until": _time("--until", until),
        "error_contains": error_contains,
    }
    return {key: value for key, value in given.items() if value is not None}


def control(
    kind: ActionKind, ids: list[str] | None, filters: dict[str, Any], *,
    dry_run: bool, reason: str | None, as_json: bool,
) -> None:
    """Act on the named jobs, or run a bulk action over the filter."""
    if bool(ids) == bool(filters):
        raise InvalidOptions("name jobs by id or select them with a filter (not both)")
    reason = checked_reason(reason)
    with wired_views() as (wired, store):
        if ids:
            job_ids = [resolve(store, ref) for ref in ids]
            rows = _by_id(wired.ledger, kind, job_ids, reason, dry_run=dry_run)
            _print_rows(rows, kind, dry_run=dry_run, as_json=as_json)
            return
        job_filter = action_filter(kind, filters)
        runner = ActionRunner(wired.ledger, _reader(store), utc_now)
        if dry_run:
            _print_preview(runner.preview(kind, job_filter), as_json)
            return
        action = runner.start(kind, job_filter, cli_actor(), reason)
        summary = runner.run(action.id, on_batch=None if as_json else _progress).summary()
    _print_summary(summary, as_json)


def _progress(action: Any) -> None:
    """One line on stderr per batch, while the action runs in this process."""
    sys.stderr.write(f"action {action.id} ({action.kind.value}): {action.done} of "
                     f"{action.total} job(s) done\n")
    sys.stderr.flush()


def _reader(store: ViewStore) -> Any:
    def read(query: Any) -> Any:
        catch_up_unfed(store, [VIEWS["job_status"]])
        return query(store)

    return read


def _by_id(
    ledger: Any, kind: ActionKind, job_ids: list[UUID], reason: str | None, *, dry_run: bool
) -> list[dict[str, Any]]:
    if dry_run:
        return [{"job_id": str(j), "status": str(ledger.get_job(j).status), "result": "would "
                 + kind.value} for j in job_ids]
    commands = [command_for(kind, j, cli_actor(), reason, None) for j in job_ids]
    results = ledger.execute_batch(commands, utc_now())
    observe(commands, results)
    rows = []
    for job_id, result in zip(job_ids, results, strict=True):
        if isinstance(result, LedgerError):
            rows.append({"job_id": str(job_id), "status": None, "result": str(result)})
        else:
            rows.append({"job_id": str(job_id), "status": result.status, "result": "done"})
    return rows


def _print_rows(rows: list[dict[str, Any]], kind: ActionKind, *, dry_run: bool,
                as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"dry_run": dry_run, "jobs": rows}, indent=2) + "\n")
    else:
        table = Table(title=f"{kind.value}: {len(rows)} job(s)" + (" (dry run)" if dry_run
                                                                   else ""))
        for column in ("job_id", "status", "result"):
            table.add_column(column, no_wrap=column == "job_id")
        for row in rows:
            table.add_row(*(cell(row[c]) for c in ("job_id", "status", "result")))
        console.print(table)
    if not dry_run and any(row["result"] != "done" for row in rows):
        raise typer.Exit(1)


def _print_preview(preview: Preview, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(preview.to_dict(), indent=2, default=str) + "\n")
        return
    console.print(f"dry run: {preview.kind.value} would act on {preview.count} job(s); "
                  "nothing was changed")
    table = Table(title=f"the first {len(preview.sample)}")
    columns = ("job_id", "customer_id", "queue", "status", "enqueued_at", "last_error")
    for column in columns:
        table.add_column(column, no_wrap=column == "job_id")
    for job in preview.sample:
        row = job.to_dict()
        table.add_row(*(cell(row[c]) for c in columns))
    console.print(table)


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        return
    console.print(
        f"action {summary['action_id']} ({summary['kind']}) {summary['state']}: "
        f"{summary['acted']} of {summary['total']} job(s) done, {summary['skipped']} had "
        f"moved on"
    )


def _control_command(kind: ActionKind, doc: str) -> Callable[..., None]:
    """The ``ledger jobs KIND`` command: jobs by id (or prefix) or by filter, one action."""

    def command(  # noqa: PLR0917 - typer options
        ids: Ids = None, status: StatusOpt = None, queue: QueueOpt = None,
        customer: CustomerOpt = None, since: SinceOpt = None, until: UntilOpt = None,
        error_contains: ErrorOpt = None, dry_run: DryRun = False, reason: ReasonOpt = None,
        as_json: AsJson = False,
    ) -> None:
        filters = _filter_data(status, queue, customer, since, until, error_contains)
        control(kind, ids, filters, dry_run=dry_run, reason=reason, as_json=as_json)

    command.__doc__ = doc
    command.__name__ = f"{kind.value}_command"
    return user_errors(command)


cancel_command = _control_command(
    ActionKind.CANCEL,
    "Cancel jobs: pending and scheduled at once, running ones by asking their worker.",
)
retry_command = _control_command(
    ActionKind.RETRY, "Retry dead-lettered jobs with a fresh attempt budget (redrive)."
)
requeue_command = _control_command(
    ActionKind.REQUEUE, "Requeue scheduled or stuck running jobs: pending now."
)


@user_errors
def resume_action_command(
    action_id: Annotated[str, typer.Argument(metavar="ACTION_ID", help="The action's id.")],
    as_json: AsJson = False,
) -> None:
    """Resume an interrupted bulk action after its last recorded batch."""
    try:
        parsed = UUID(action_id)
    except ValueError:
        raise InvalidOptions(f"{action_id!r} is not an action id (a UUID)") from None
    with wired_views() as (wired, store):
        runner = ActionRunner(wired.ledger, _reader(store), utc_now)
        summary = runner.run(parsed, on_batch=None if as_json else _progress).summary()
    _print_summary(summary, as_json)
