"""Text a client chose (an operator's reason, a customer or queue name) is shown as written
by the CLI's tables: a reason with rich markup stopped 'ledger queues list' and 'ledger jobs
show' with a MarkupError traceback, and 'api:key:<id>' showed a key emoji (issue 14 QA)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from adapters.cli.console import cell, make_console
from adapters.cli.timeline import timeline_table
from ledger.commands import CancelJob, EnqueueJob
from tests.support.projection_events import memory_ledger

ODD = "[/bold] closing tag :key: [red]red"


def rendered(console: Console, table: Table) -> str:
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def test_a_cell_shows_markup_and_emoji_codes_as_written() -> None:
    table = Table()
    table.add_column("paused_reason")
    table.add_row(cell(ODD))
    console = make_console()
    console.file = io.StringIO()
    assert ODD in rendered(console, table)


def test_a_jobs_history_shows_the_actor_and_an_odd_reason_as_written() -> None:
    ledger = memory_ledger()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), now).job_id
    ledger.execute(CancelJob(job_id=job_id, actor="api:key:abc:service", reason=ODD), now)
    console = make_console()
    console.file = io.StringIO()
    text = rendered(console, timeline_table(ledger.history(job_id)))
    assert "actor=api:key:abc:service" in text
    assert ODD in text
