"""``ledger schedules add|list|pause|resume|remove`` (ADR 130): cron schedules whose
ticks enqueue a job each, exactly once; every change an event with the actor
``cli:<OS user>`` and an optional ``--reason``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

from adapters.cli.console import cell, make_console
from adapters.cli.controls import AsJson, ReasonOpt, cli_actor
from adapters.cli.errors import InvalidOptions, user_errors
from adapters.cli.monitor import run_parts
from adapters.cli.projections import wired_views
from adapters.service.bootstrap import Container, utc_now
from adapters.service.parts import Part, schedules_part
from ledger.policies.cron import MissedTicks
from ledger.ports.transport import Transport
from ledger.schedule import MAX_PAYLOAD_BYTES, Schedule, ScheduleSpec
from ledger.schedule_book import ScheduleBook
from projections.queries.schedules import ScheduleQueries
from projections.registry import VIEWS
from projections.runner import catch_up_unfed

schedules_app = typer.Typer(
    help="Cron schedules: each tick enqueues one job.", no_args_is_help=True
)
console = make_console()

Name = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]
COLUMNS = ("name", "cron", "timezone", "queue", "state", "next_tick", "last_tick", "last_late",
           "ticks", "missed", "changed_by", "changed_reason")


def parse_payload(text: str) -> Any:
    """``--payload``: JSON text, bounded before it is parsed."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
        raise InvalidOptions(f"--payload is longer than {MAX_PAYLOAD_BYTES} bytes")
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError) as error:
        raise InvalidOptions(f"--payload is not JSON: {error}") from None


@schedules_app.command("add")
@user_errors
def add_command(
    name: Name,
    *,
    cron: Annotated[str, typer.Option("--cron", help='Five fields, e.g. "*/5 * * * *".')],
    queue: Annotated[str, typer.Option("--queue", help="The queue its jobs go to.")] = "default",
    payload: Annotated[str, typer.Option("--payload", help="Each job's payload (JSON).")] = "null",
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone of the cron.")] = "UTC",
    missed: Annotated[MissedTicks, typer.Option(
        "--missed", help="Ticks missed while no scheduler ran: enqueue the latest, or skip.",
    )] = MissedTicks.RUN_ONCE,
    customer: Annotated[str, typer.Option("--customer", help="Its jobs' customer.")] = "schedules",
    priority: Annotated[int, typer.Option("--priority", help="-100..100.")] = 0,
    max_attempts: Annotated[int, typer.Option("--max-attempts", help="1..100.")] = 3,
    reason: ReasonOpt = None,
    as_json: AsJson = False,
) -> None:
    """Add a schedule (validated: nothing is recorded when any part is wrong)."""
    spec = ScheduleSpec(
        name=name, cron=cron, queue=queue, payload=parse_payload(payload), timezone=timezone,
        missed=missed, customer_id=customer, priority=priority, max_attempts=max_attempts,
    )
    with wired_views() as (wired, _):
        schedule = ScheduleBook(wired.ledger).add(spec, cli_actor(), reason, utc_now())
    _print(schedule, "added", as_json)


def _print(schedule: Schedule, what: str, as_json: bool) -> None:
    spec = schedule.settings
    if as_json:
        sys.stdout.write(json.dumps({
            **msgspec.to_builtins(spec), "paused": schedule.paused, "removed": schedule.removed,
            "next_tick": _iso(schedule.next_tick), "last_tick": _iso(schedule.last_tick),
        }, indent=2) + "\n")
        return
    state = "removed" if schedule.removed else "paused" if schedule.paused else "active"
    console.print(
        f"schedule {cell(spec.name)} {what}: {state}, cron {cell(spec.cron)} "
        f"({cell(spec.timezone)}), next tick {_iso(schedule.next_tick) or 'none'}",
        highlight=False,
    )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


@schedules_app.command("list")
@user_errors
def list_command(as_json: AsJson = False) -> None:
    """Every schedule: its cron, state, next tick and the last one fired (how late)."""
    with wired_views() as (_, store):
        catch_up_unfed(store, [VIEWS["schedules"]])
        rows = [row.to_dict() for row in ScheduleQueries(store).all()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    table = Table(title=f"{len(rows)} schedule(s)")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell(row[c]) for c in COLUMNS))
    console.print(table)


@schedules_app.command("pause")
@user_errors
def pause_command(name: Name, reason: ReasonOpt = None, as_json: AsJson = False) -> None:
    """Fire none of its ticks until it is resumed."""
    with wired_views() as (wired, _):
        schedule = ScheduleBook(wired.ledger).pause(name, cli_actor(), reason, utc_now())
    _print(schedule, "paused", as_json)


@schedules_app.command("resume")
@user_errors
def resume_command(name: Name, reason: ReasonOpt = None, as_json: AsJson = False) -> None:
    """Fire its ticks again from the next one (those of the pause are not fired)."""
    with wired_views() as (wired, _):
        schedule = ScheduleBook(wired.ledger).resume(name, cli_actor(), reason, utc_now())
    _print(schedule, "resumed", as_json)


@schedules_app.command("remove")
@user_errors
def remove_command(name: Name, reason: ReasonOpt = None, as_json: AsJson = False) -> None:
    """Remove the schedule (its history stays in the log; the name may be added again)."""
    with wired_views() as (wired, _):
        schedule = ScheduleBook(wired.ledger).remove(name, cli_actor(), reason, utc_now())
    _print(schedule, "removed", as_json)


@schedules_app.command("run")
def run_command() -> None:
    """Run the schedule ticker alone until SIGINT/SIGTERM (``ledger serve`` runs one too;
    one fires at a time, the others stand by)."""

    def make(container: Container, _: Transport | None) -> list[Part]:
        return [schedules_part(container)]

    run_parts(make, transport=False)
