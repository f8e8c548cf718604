"""``ledger audit``: check the ledger's invariants; exit 1 naming the offending jobs."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.console import make_console
from adapters.cli.errors import user_errors
from adapters.service.archive_audit import archive_audit
from adapters.service.archive_reader import segment_store
from adapters.service.audit import ALERT_MARGIN_SECONDS, IN_FLIGHT_SECONDS, AuditReport, run_audit
from adapters.service.bootstrap import build, utc_now
from ledger.errors import LedgerError
from projections.events import EventNotUnderstood
from projections.registry import VIEWS

console = make_console()
SHOW_JOBS = 20


class AuditFailed(LedgerError):
    """The ledger breaks an invariant."""

    code = "audit_failed"


@user_errors
def audit_command(  # noqa: PLR0917 - typer options
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    alert_grace: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds a dead letter may wait for its alert (default: "
                     "ALERT_GROUP_WAIT_SECONDS + DLQ_CHECK_INTERVAL_SECONDS + 30)."),
    ] = None,
    in_flight: Annotated[
        float, typer.Option(min=0, help="Seconds an unsent enqueue/requeue counts as in flight.")
    ] = IN_FLIGHT_SECONDS,
    no_dispatch: Annotated[
        bool, typer.Option("--no-dispatch", help="Skip the check that the dispatcher sent "
                           "every enqueue, requeue and redrive.")
    ] = False,
    no_views: Annotated[
        bool, typer.Option("--no-views", help="Skip verifying the views against a rebuild.")
    ] = False,
    deep: Annotated[
        bool, typer.Option("--deep", help="Re-read every archive segment whole and audit "
                           "the archived jobs' events with the hot log's.")
    ] = False,
) -> None:
    """Check the ledger's invariants from the log and the views: no job lost, every claim
    ended, nothing applied to a superseded attempt, one alert per dead letter, every requeue
    sent, every view equal to a rebuild. Exits 1 listing the offending jobs."""
    wired = build()
    try:
        settings = wired.settings
        grace = alert_grace if alert_grace is not None else (
            settings.alert_group_wait_seconds + settings.dlq_check_interval_seconds
            + ALERT_MARGIN_SECONDS
        )

        try:
            report = run_audit(
                wired.backend.open_views, [] if no_views else list(VIEWS.values()), now=utc_now,
                alert_grace=timedelta(seconds=grace), in_flight=timedelta(seconds=in_flight),
                check_dispatch=not no_dispatch,
                archive=archive_audit(wired.backend, segment_store(settings), deep=deep),
            )
        except EventNotUnderstood as error:
            raise AuditFailed(f"audit failed: the log has an event it cannot read: {error}"
                              ) from None
    finally:
        wired.close()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        _show(report)
    if not report.ok:
        jobs = report.offending_jobs
        views = [v.view for v in report.views if not v.equal]
        parts = []
        if jobs:
            shown = ", ".join(jobs[:SHOW_JOBS]) + (" ..." if len(jobs) > SHOW_JOBS else "")
            parts.append(f"{len(jobs)} offending job(s): {shown}")
        if views:
            parts.append(f"views differing from a rebuild: {', '.join(views)}")
        stopped = [f"{v.view} ({v.failure})" for v in report.views if v.failure]
        if stopped:
            parts.append(f"views a rebuild cannot fold to the head: {'; '.join(stopped)}")
        raise AuditFailed("audit failed: " + "; ".join(parts))


def _show(report: AuditReport) -> None:
    table = Table(title=f"ledger audit: {'OK' if report.ok else 'FAILED'}", show_header=False)
    table.add_row("events read", f"{report.events} (log head {report.head})")
    table.add_row("jobs", str(report.jobs))
    for status, count in report.statuses.items():
        table.add_row(f"  {status}", str(count))
    table.add_row("reports refused (superseded)", str(report.refused_reports))
    table.add_row("dispatcher position", str(report.dispatched_upto))
    pending = Counter(p.kind for p in report.pending)
    table.add_row("alerts pending (in grace)", str(pending.get("alert", 0)))
    table.add_row("sends in flight", str(pending.get("dispatch", 0)))
    by_invariant = Counter(v.invariant for v in report.violations)
    table.add_row("violations", str(len(report.violations)))
    for invariant, count in sorted(by_invariant.items()):
        table.add_row(f"  {invariant}", f"[red]{count}[/]")
    for view in report.views:
        table.add_row(f"view {view.view}",
                      "[green]equals a rebuild[/]" if view.ok else
                      "[red]DIFFERS[/]" if not view.equal else "[red]A REBUILD STOPS[/]")
    table.add_row("seconds", f"{report.seconds:.2f}")
    console.print(table)
    for violation in report.violations[:50]:
        console.print(f"[red]{violation.invariant}[/] {violation.job_id}: {violation.detail}",
                      highlight=False)
    for view in report.views:
        if view.failure:
            console.print(f"{view.view} a rebuild stops: {view.failure}", style="red",
                          highlight=False, markup=False)
        for difference in view.differences:
            console.print(f"[red]{view.view}[/] {difference}", highlight=False, markup=False)
