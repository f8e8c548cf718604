"""Views as of a moment on the command line (ADR 90): ``ledger projections checkpoint VIEW``,
``ledger projections show VIEW --as-of T|@P``, ``ledger projections diff VIEW --from --to``
and the ``--as-of`` of ``ledger jobs list``.

A moment is an ISO-8601 time with a zone or ``@POSITION``; a time in the future or a
position past the head is refused with one line. The view is folded in memory from its
newest valid checkpoint at or before the cut (a refused checkpoint is named on stderr)
and never touches the live tables.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from adapters.cli.console import make_console
from adapters.cli.errors import user_errors
from adapters.service.archive_reader import segment_store
from adapters.service.archive_replay import with_archive
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.view_rebuild import take_and_prune
from ledger.errors import LedgerError
from projections.asof import InvalidMoment, ViewAsOf, parse_moment, resolve, view_as_of
from projections.asof_reads import Touches, diff, jobs, touches
from projections.checkpoints import Checkpoint, CheckpointStore
from projections.model import View
from projections.registry import VIEWS, get_view
from projections.runner import catch_up_unfed
from projections.store import ViewStore

console = make_console()
err_console = make_console(stderr=True)
AS_OF_HELP = "A time with a zone (2026-12-01T03:00Z) or @POSITION."


class BackwardsRange(LedgerError):
    """--from must not be after --to."""

    code = "backwards_range"


@contextmanager
def sessions() -> Iterator[tuple[Container, ViewStore, CheckpointStore]]:
    wired = build()
    store = with_archive(  # a view as of a moment before an archive (ADR 110)
        wired.backend.open_views(), wired.backend, segment_store(wired.settings)
    )
    checkpoints = wired.backend.checkpoints()
    try:
        yield wired, store, checkpoints
    finally:
        checkpoints.close()
        store.close()
        wired.close()


def cut(store: ViewStore, text: str) -> int:
    """The log position ``text`` names (refusing the future and positions past the head)."""
    moment = parse_moment(text)
    if moment.time is not None and moment.time > utc_now():
        raise InvalidMoment(text, "that time is in the future")
    return resolve(store, moment)


def folded(store: ViewStore, checkpoints: CheckpointStore, view: View, position: int) -> ViewAsOf:
    result = view_as_of(store, checkpoints, view, position)
    for refused in result.refused:
        err_console.print(f"note: {refused}", highlight=False, markup=False)
    return result


def checkpoint_record(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    return None if checkpoint is None else msgspec.to_builtins(
        {"id": checkpoint.id, "position": checkpoint.position, "taken_at": checkpoint.taken_at,
         "rows": checkpoint.row_count, "bytes": checkpoint.byte_count}
    )


def checkpoint_command(
    name: Annotated[str, typer.Argument(help=f"The view: {', '.join(VIEWS)}.")],
) -> None:
    """Take a checkpoint of a view now (a copy of its tables at its position)."""
    view = get_view(name)
    with sessions() as (wired, store, _):
        catch_up_unfed(store, [view])
        made = take_and_prune(wired.backend, store, view, wired.settings.checkpoint_keep)
    console.print(f"checkpoint of {name} at position {made.position}: {made.row_count} rows, "
                  f"{made.byte_count} bytes, sha256 {made.sha256[:16]}")


def show_command(
    name: Annotated[str, typer.Argument(help=f"The view: {', '.join(VIEWS)}.")],
    as_of: Annotated[str, typer.Option("--as-of", help=AS_OF_HELP)],
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per table.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A view's tables as they were at a moment (from a checkpoint and the log)."""
    view = get_view(name)
    with sessions() as (_, store, checkpoints):
        result = folded(store, checkpoints, view, cut(store, as_of))
    tables = {t.name: result.memory.dicts(t.name) for t in view.tables}
    record = {
        "view": name, "as_of": as_of, "position": result.position,
        "checkpoint": checkpoint_record(result.checkpoint), "folded_events": result.folded,
        "refused_checkpoints": [str(e) for e in result.refused],
        "tables": {n: {"rows": len(rows), "shown": rows[:limit]} for n, rows in tables.items()},
    }
    if as_json:
        sys.stdout.write(json.dumps(msgspec.to_builtins(record), indent=2) + "\n")
        return
    start = (f"checkpoint at {result.checkpoint.position}" if result.checkpoint
             else "the start of the log")
    console.print(f"{name} as of {as_of}: position {result.position} ({start} + "
                  f"{result.folded} events)", highlight=False)
    for table_name, rows in tables.items():
        _print_rows(console, f"{table_name}: {len(rows)} rows", rows[:limit])


def _print_rows(out: Console, title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for column in rows[0] if rows else ():
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    out.print(table)


def diff_command(
    name: Annotated[str, typer.Argument(help=f"The view: {', '.join(VIEWS)}.")],
    start: Annotated[str, typer.Option("--from", help=AS_OF_HELP)],
    end: Annotated[str, typer.Option("--to", help=AS_OF_HELP)],
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many rows.")]
    = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The rows of a view that changed between two moments, with the events that did it."""
    view = get_view(name)
    with sessions() as (_, store, checkpoints):
        first, last = cut(store, start), cut(store, end)
        if first > last:
            raise BackwardsRange(f"--from is position {first}, after --to (position {last})")
        before = folded(store, checkpoints, view, first)
        after = folded(store, checkpoints, view, last)
        touched = touched_between(store, first, last)
    changes = diff(view, before.memory, after.memory, touched)
    records = [msgspec.to_builtins({
        "table": c.table, "key": list(c.key), "change": c.change,
        "columns": {k: {"before": b, "after": a} for k, (b, a) in c.columns.items()},
        "events": [{"position": p, "topic": t, "job": j} for p, t, j in c.events],
    }) for c in changes[:limit]]
    if as_json:
        body = {"view": name, "from": first, "to": last, "changed": len(changes),
                "rows": records}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    table = Table(title=f"{name}: {len(changes)} rows changed from position {first} to {last}")
    for column in ("key", "change", "columns (before -> after)", "events"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            ", ".join(str(k) for k in record["key"]), record["change"],
            "\n".join(f"{k}: {v['before']} -> {v['after']}" for k, v in record["columns"].items()),
            "\n".join(f"@{e['position']} {e['topic']}" for e in record["events"]),
        )
    console.print(table)


def touched_between(store: ViewStore, first: int, last: int, page: int = 20_000) -> Touches:
    """Which originator each event in ``(first, last]`` touched (no decoding needed)."""
    found: Touches = {}
    after = first
    while after < last:
        rows = store.read_events(after, page, last)
        if not rows:
            break
        touches(rows, found)
        after = rows[-1][0]
    return found


def print_jobs_as_of(
    as_of: str, *, status: str | None, customer: str | None, queue: str | None, limit: int,
    as_json: bool,
) -> None:
    """``ledger jobs list --as-of``: the job_status view as of the moment, filtered."""
    with sessions() as (_, store, checkpoints):
        result = folded(store, checkpoints, get_view("job_status"), cut(store, as_of))
    rows = [j.to_dict() for j in jobs(result.memory, status=status, customer_id=customer,
                                      queue=queue, limit=limit)]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    columns = ("job_id", "customer_id", "queue", "status", "attempt", "enqueued_at")
    _print_rows(console, f"{len(rows)} jobs as of {as_of} (position {result.position})",
                [{c: row[c] for c in columns} for row in rows])


def register(app: typer.Typer) -> None:
    """Add checkpoint, show and diff to ``ledger projections``."""
    app.command("checkpoint")(user_errors(checkpoint_command))
    app.command("show")(user_errors(show_command))
    app.command("diff")(user_errors(diff_command))
