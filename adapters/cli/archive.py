"""``ledger archive``: move ended jobs' events into segments; ``ledger archive status``
(ADR 110)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from adapters.cli.console import make_console
from adapters.cli.errors import user_errors
from adapters.service.ages import parse_age
from adapters.service.archive import ArchiveReport, run_archive
from adapters.service.archive_reader import segment_store
from adapters.service.archive_status import archive_status
from adapters.service.bootstrap import build, utc_now

console = make_console()
archive_app = typer.Typer(
    help="Archive the events of jobs that ended long ago into segments (ADR 110).",
    invoke_without_command=True,
)


def _report_dict(report: ArchiveReport) -> dict[str, Any]:
    return {
        "cut": report.cut.isoformat(), "horizon": report.horizon, "dry_run": report.dry_run,
        "candidates": report.candidates, "jobs": report.jobs, "events": report.events,
        "bytes": report.bytes, "skipped": report.skipped,
        "segments": [{"seq": s.seq, "name": s.name, "jobs": s.job_count,
                      "events": s.event_count, "bytes": s.byte_count,
                      "sha256": s.sha256} for s in report.segments],
    }


@archive_app.callback()
@user_errors
def archive_command(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(
        "--older-than", help="Archive jobs that ended longer ago than this (30d, 12h, 90m).")
    ] = "30d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be archived; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Move the events of jobs completed or cancelled before the cut into a verified,
    compressed, hash-chained segment, then out of the hot log (one transaction)."""
    if ctx.invoked_subcommand is not None:
        return
    age = parse_age("--older-than", older_than)
    wired = build()
    try:
        store = segment_store(wired.settings)
        try:
            report = run_archive(wired.backend, store, age, utc_now(), dry_run=dry_run)
        finally:
            store.close()
    finally:
        wired.close()
    if as_json:
        sys.stdout.write(json.dumps(_report_dict(report), indent=2) + "\n")
        return
    verb = "would archive" if dry_run else "archived"
    console.print(
        f"{verb} {report.jobs} job(s), {report.events} event(s) into "
        f"{len(report.segments)} segment(s), {report.bytes} bytes (cut "
        f"{report.cut:%Y-%m-%d %H:%M:%S}, horizon {report.horizon}; {report.skipped} "
        "job(s) left hot: an event past the horizon or the log's last)"
        + ("; nothing was changed" if dry_run else "")
    )


@archive_app.command("status")
@user_errors
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The hot log and the archive: events, segments, bytes, the oldest hot event."""
    wired = build()
    try:
        status = archive_status(wired.backend)
    finally:
        wired.close()
    if as_json:
        sys.stdout.write(json.dumps(status, indent=2, default=str) + "\n")
        return
    table = Table(show_header=False, box=None)
    for key, value in status.items():
        table.add_row(f"[bold]{key}[/]", str(value))
    console.print(table)
