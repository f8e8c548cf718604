"""``ledger queues list|pause|resume|limit`` (ADR 100): each control an event with the
actor ``cli:<OS user>`` and an optional ``--reason``."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.console import cell, make_console
from adapters.cli.controls import AsJson, ReasonOpt, cli_actor
from adapters.cli.errors import InvalidOptions, user_errors
from adapters.cli.projections import wired_views
from adapters.service.bootstrap import utc_now
from adapters.service.queue_controls import queue_states
from adapters.tracing import observe_queue
from ledger.action import checked_reason
from ledger.commands import PauseQueue, QueueOutcome, ResumeQueue, SetQueueLimit
from projections.registry import VIEWS
from projections.runner import catch_up_unfed

queues_app = typer.Typer(help="Pause, resume and cap queues.", no_args_is_help=True)
console = make_console()

Name = Annotated[str, typer.Argument(metavar="QUEUE", help="The queue's name.")]
COLUMNS = ("queue", "paused", "paused_by", "paused_reason", "max_running", "running",
           "pending", "in_progress")


@queues_app.command("list")
@user_errors
def list_command(as_json: AsJson = False) -> None:
    """Every queue with jobs or controls: paused (by whom, why), its cap and its jobs."""
    with wired_views() as (wired, store):
        catch_up_unfed(store, [VIEWS["health_metrics"], VIEWS["queue_controls"]])
        states = queue_states(wired.ledger, lambda read: read(store))
    rows = [state.to_dict() for state in states]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    table = Table(title=f"{len(rows)} queue(s)")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell(row[c]) for c in COLUMNS))
    console.print(table)


def _run(command: PauseQueue | ResumeQueue | SetQueueLimit, as_json: bool) -> None:
    with wired_views() as (wired, _):
        outcome: QueueOutcome = wired.ledger.control_queue(command, utc_now())
    observe_queue(command, outcome)
    if as_json:
        sys.stdout.write(json.dumps({
            "queue": outcome.queue, "paused": outcome.paused,
            "max_running": outcome.max_running, "running": outcome.running,
            "changed": outcome.changed,
        }, indent=2) + "\n")
        return
    state = "paused" if outcome.paused else "running"
    cap = "no cap" if outcome.max_running is None else f"at most {outcome.max_running} running"
    same = "" if outcome.changed else " (it already was)"
    console.print(f"queue {outcome.queue}: {state}, {cap}{same}")


@queues_app.command("pause")
@user_errors
def pause_command(queue: Name, reason: ReasonOpt = None, as_json: AsJson = False) -> None:
    """Hold the queue's sends and starts until it is resumed."""
    _run(PauseQueue(queue=queue, actor=cli_actor(), reason=checked_reason(reason)), as_json)


@queues_app.command("resume")
@user_errors
def resume_command(queue: Name, reason: ReasonOpt = None, as_json: AsJson = False) -> None:
    """Send and start the queue's jobs again."""
    _run(ResumeQueue(queue=queue, actor=cli_actor(), reason=checked_reason(reason)), as_json)


@queues_app.command("limit")
@user_errors
def limit_command(
    queue: Name,
    max_running: Annotated[str, typer.Argument(
        metavar="MAX_RUNNING", help="At most this many running at once, or 'none'.")],
    reason: ReasonOpt = None,
    as_json: AsJson = False,
) -> None:
    """Cap the queue's running jobs across all workers ('none' lifts the cap)."""
    if max_running.lower() == "none":
        cap = None
    else:
        try:
            cap = int(max_running)
        except ValueError:
            raise InvalidOptions(f"MAX_RUNNING {max_running!r} is not a number or 'none'") from None
        if cap < 1:
            raise InvalidOptions(f"MAX_RUNNING must be at least 1 (or 'none'), not {cap}")
    _run(SetQueueLimit(queue=queue, actor=cli_actor(), reason=checked_reason(reason),
                       max_running=cap), as_json)
