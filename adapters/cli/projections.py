"""``ledger projections status | run | rebuild NAME | verify [NAME]`` and ``ledger migrate``.

Errors print one line on stderr and exit 1 (a view that stopped on an event, a verify
that found differences, an unreachable database); never a traceback.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from adapters.cli.console import make_console
from adapters.cli.errors import PROGRAM, reported, user_errors
from adapters.service.archive_replay import archive_start
from adapters.service.backend import Backend, backend_for
from adapters.service.bootstrap import Container, build, load_settings
from adapters.service.view_rebuild import rebuild_view
from adapters.tracing import configure_logging
from ledger.errors import LedgerError
from projections.queries.job_status import JobStatus, JobStatusQueries
from projections.queries.lag import view_status
from projections.rebuild import REBUILD_PAGE, VerifyResult, verify
from projections.registry import VIEWS, get_view, select
from projections.runner import PAGE_SIZE, Runner, ViewsStopped, catch_up_unfed
from projections.store import ViewStore

projections_app = typer.Typer(
    help="Feed, inspect, rebuild and verify the read views.", no_args_is_help=True
)
console = make_console()
err_console = make_console(stderr=True)


@contextmanager
def wired_views() -> Iterator[tuple[Container, ViewStore]]:
    """The ledger wired (tables created, migrations applied) and a session on the views."""
    wired = build()
    store = wired.backend.open_views()
    try:
        yield wired, store
    finally:
        store.close()
        wired.close()


@contextmanager
def views_store() -> Iterator[tuple[Backend, ViewStore]]:
    """:func:`wired_views` for commands that need only the backend beside the views."""
    with wired_views() as (wired, store):
        yield wired.backend, store


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TaskProgressColumn(), TimeRemainingColumn(), console=err_console, transient=False,
        disable=not err_console.is_terminal,  # scripts get the result lines only
    )


@projections_app.command("status")
@user_errors
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each view's position in the log, its lag, who feeds it and why it stopped."""
    with views_store() as (_, store):
        rows = view_status(store, list(VIEWS.values()), runners=True)
    if as_json:
        sys.stdout.write(json.dumps([_builtins(r) for r in rows], indent=2) + "\n")
        return
    table = Table(title=f"views (log head {rows[0].head if rows else 0})")
    for column in ("view", "position", "lag", "generation", "fed by", "updated", "error"):
        table.add_column(column, overflow="fold")
    for r in rows:
        last = f" (last {r.owner})" if r.owner else ""
        fed_by = (r.owner or "a runner") if r.fed else f"nobody{last}"
        table.add_row(
            r.view, str(r.position), str(r.lag), str(r.generation), fed_by,
            f"{r.updated_at:%Y-%m-%d %H:%M:%S}" if r.updated_at else "",
            f"[red]{r.error}[/]" if r.error else "",
        )
    console.print(table)


@projections_app.command("run")
@user_errors
def run(
    view: Annotated[
        list[str] | None, typer.Option("--view", help="Feed only this view (repeatable).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Catch up the free views, then exit.")
    ] = False,
    page_size: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = PAGE_SIZE,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between polls and lock attempts.")
    ] = 0.5,
) -> None:
    """Run the projection runner alone: feed the views until interrupted."""
    with reported(PROGRAM):  # LOG_FORMAT=json: one JSON object per line (ADR 125)
        configure_logging(logging.INFO, "%(asctime)s %(levelname)s %(message)s")
    chosen = select(view)
    if not once:  # until interrupted, reconnecting after a failed session
        from adapters.service.parts import feed_views

        wired = build()  # tables created, migrations applied
        try:
            stop = threading.Event()
            _stop_on_signals(stop)
            failures = feed_views(wired.backend, chosen, stop, poll_interval=poll_interval,
                                  page_size=page_size)
        finally:
            wired.close()
        if failures:
            raise ViewsStopped(failures)
        return
    with views_store() as (_, store):
        runner = Runner(store, chosen, page_size=page_size)
        try:
            runner.acquire()
            runner.catch_up()
            busy = sorted({v.name for v in chosen} - set(runner.held))
        finally:
            runner.release()
        for name in busy:
            err_console.print(f"view {name} is fed by another runner; left alone")
        failures = runner.failures
    if failures:
        raise ViewsStopped(failures)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@projections_app.command("rebuild")
@user_errors
def rebuild_command(
    name: Annotated[str, typer.Argument(help=f"The view: {', '.join(VIEWS)}.")],
    page_size: Annotated[int, typer.Option(min=1, help="Events per page.")] = REBUILD_PAGE,
    from_archive: Annotated[bool, typer.Option(
        "--from-archive", help="Replay the archive's segments and the hot log, from nothing "
        "(default: the newest checkpoint after the archive's horizon and the hot log).")
    ] = False,
) -> None:
    """Rebuild a view from the log beside the live one, then swap it in atomically."""
    view = get_view(name)
    with views_store() as (backend, store), _progress() as progress:
        task = progress.add_task(f"rebuilding {name}", total=store.head())

        def advance(position: int, head: int) -> None:
            progress.update(task, completed=position, total=head)

        done = rebuild_view(backend, store, view, keep=load_settings().checkpoint_keep,
                            page_size=page_size, progress=advance, from_archive=from_archive)
    console.print(f"rebuilt {name} {done.summary()}")


@projections_app.command("verify")
@user_errors
def verify_command(
    name: Annotated[
        str | None, typer.Argument(help="The view (all views when omitted).")
    ] = None,
    page_size: Annotated[int, typer.Option(min=1, help="Events per page.")] = REBUILD_PAGE,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rebuild views into scratch tables and compare them with the live ones."""
    views = [get_view(name)] if name else list(VIEWS.values())
    results = []
    with views_store() as (backend, work):
        live, reader = backend.open_views(), backend.open_views()
        try:
            with _progress() as progress:
                for view in views:
                    task = progress.add_task(f"verifying {view.name}", total=None)

                    def advance(position: int, head: int, task: Any = task) -> None:
                        progress.update(task, completed=position, total=head)

                    results.append(verify(live, work, view, page_size=page_size,
                                          progress=advance, reader=reader,
                                          start=archive_start(backend)))
                    progress.update(task, total=1, completed=1)
        finally:
            live.close()
            reader.close()
    if as_json:
        records = [_verify_record(result) for result in results]
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    for result in [] if as_json else results:
        _show_verify(result)
    stopped = [f"{r.view}: {r.failure}" for r in results if r.failure]
    if stopped:
        raise RebuildStops(stopped)
    differing = [r.view for r in results if not r.equal]
    if differing:
        raise VerifyFailed(differing)


class VerifyFailed(LedgerError):
    """A rebuilt view differs from the live one."""

    def __init__(self, views: list[str]) -> None:
        super().__init__(f"rebuilt view differs from the live one: {', '.join(views)}")


def _verify_record(result: VerifyResult) -> dict[str, Any]:
    """What ``verify --json`` prints for one view."""
    return {
        "view": result.view, "position": result.position, "ok": result.ok,
        "equal": result.equal, "failure": result.failure,
        "tables": [
            {"table": t.table, "equal": t.equal, "live_rows": t.live_rows,
             "rebuilt_rows": t.rebuilt_rows, "live_checksum": t.live_checksum,
             "rebuilt_checksum": t.rebuilt_checksum,
             "differences": [{"live": live, "rebuilt": rebuilt}
                             for live, rebuilt in t.differences]}
            for t in result.tables
        ],
    }


class RebuildStops(LedgerError):
    """A rebuild of a view cannot fold the whole log: the view stops at an event."""

    code = "rebuild_stops"

    def __init__(self, stopped: list[str]) -> None:
        super().__init__(f"a rebuild cannot fold the whole log: {'; '.join(stopped)}")


def _show_verify(result: VerifyResult) -> None:
    table = Table(title=f"{result.view} at position {result.position}")
    for column in ("table", "live rows", "rebuilt rows", "live checksum", "rebuilt checksum",
                   ""):
        table.add_column(column)
    for t in result.tables:
        table.add_row(t.table, str(t.live_rows), str(t.rebuilt_rows), t.live_checksum,
                      t.rebuilt_checksum, "[green]equal[/]" if t.equal else "[red]DIFFERENT[/]")
    console.print(table)
    if result.failure:
        console.print(f"a rebuild stops: {result.failure}", style="red", highlight=False,
                      markup=False)
    for t in result.tables:
        for live_row, rebuilt_row in t.differences:
            console.print(f"[red]{t.table}[/] first differing rows:", highlight=False)
            console.print(f"  live:    {live_row}", highlight=False, markup=False)
            console.print(f"  rebuilt: {rebuilt_row}", highlight=False, markup=False)


@user_errors
def migrate_command() -> None:
    """Bring job-ledger's own tables up to date (also done on every start)."""
    applied = backend_for(load_settings()).migrate()
    if applied:
        for name in applied:
            console.print(f"applied {name}")
    else:
        console.print("schema is up to date")


def list_jobs(
    backend: Backend,
    *,
    status: str | None = None,
    customer_id: str | None = None,
    queue: str | None = None,
    limit: int = 50,
) -> list[JobStatus]:
    """Jobs from the ``job_status`` view (caught up first if no runner feeds it)."""
    store = backend.open_views()
    try:
        catch_up_unfed(store, [get_view("job_status")])
        return JobStatusQueries(store).find(
            status=None if status is None else str(status), customer_id=customer_id,
            queue=queue, limit=limit,
        )
    finally:
        store.close()


def _builtins(value: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(value)
