"""A job's history as a rich table, for the CLI and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from adapters.cli.console import cell
from ledger.job import Job
from projections.timeline import event_details, event_name


def timeline_table(events: Sequence[Job.Event]) -> Table:
    table = Table(title="history", show_lines=False)
    table.add_column("v", justify="right")
    table.add_column("recorded at (UTC)")
    table.add_column("+s", justify="right")
    table.add_column("event")
    table.add_column("details", overflow="fold")
    start = events[0].timestamp if events else None
    for event in events:
        offset = (event.timestamp - start).total_seconds() if start else 0.0
        table.add_row(
            str(event.originator_version),
            event.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            f"{offset:.3f}",
            cell(event_name(event)),
            cell(event_details(event)),
        )
    return table
