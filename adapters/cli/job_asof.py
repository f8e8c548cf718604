"""``ledger jobs show ID --as-of 2026-12-01T03:00Z|@POSITION``: one job as it was then."""

from __future__ import annotations

import json
import sys
from uuid import UUID

from rich.console import Console
from rich.table import Table

from adapters.service.bootstrap import Container
from projections.asof import parse_moment
from projections.job_asof import job_as_of

AS_OF_HELP = "The job as it was at a time (2026-12-01T03:00Z) or a log position (@123)."


def print_job_as_of(
    wired: Container, job_id: UUID, as_of: str, as_json: bool, console: Console
) -> None:
    """Print the job as of ``as_of`` (the cut, the job's version then, its state)."""
    moment = parse_moment(as_of)
    store = wired.backend.open_views()
    try:
        found = job_as_of(store, wired.ledger, job_id, moment)
    finally:
        store.close()
    data = found.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table(show_header=False, box=None, title=f"as of {as_of}")
    table.add_row("[bold]position[/]", str(found.position))
    table.add_row("[bold]version[/]", str(found.version))
    for key, value in data["job"].items():
        table.add_row(f"[bold]{key}[/]", "" if value is None else str(value))
    console.print(table)
