"""``ledger replay stale | alerts``: what a policy setting would have done over the
recorded history, against what really happened (issue 16). Reads the log, never writes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
import typer
from rich.table import Table

from adapters.cli.console import make_console
from adapters.cli.errors import user_errors
from adapters.service.bootstrap import build, utc_now
from projections.replays import parse_duration, replay_alerts, replay_range, replay_stale
from projections.stale_replay import Recovery
from projections.store import ViewStore

replay_app = typer.Typer(
    help="What-if: replay a policy setting over the recorded history (read-only).",
    no_args_is_help=True,
)
console = make_console()
R = TypeVar("R")

Since = Annotated[str, typer.Option(help="Start: a duration back from now (7d) or a time.")]
Until = Annotated[str | None, typer.Option(
    help="End: a duration back from now (0s: now) or a time (default: the last event).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print(report: object, rows: list[tuple[str, Any, Any]], as_json: bool) -> None:
    if as_json:
        data = msgspec.to_builtins(report)
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table(title="replay (read-only)")
    for column in ("", "this setting", "recorded"):
        table.add_column(column)
    for name, ours, real in rows:
        table.add_row(name, _shown(ours), _shown(real))
    console.print(table)


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _recovery_rows(name: str, ours: Recovery, real: Recovery) -> list[tuple[str, Any, Any]]:
    return [(f"{name} p50 (s)", ours.p50, real.p50), (f"{name} p90 (s)", ours.p90, real.p90),
            (f"{name} max (s)", ours.max, real.max)]


def _on_views(run: Callable[[ViewStore], R]) -> R:
    """``run`` on a session of the views, closed (and the wiring with it) afterwards."""
    wired = build()
    store = wired.backend.open_views()
    try:
        return run(store)
    finally:
        store.close()
        wired.close()


@replay_app.command("stale")
@user_errors
def stale(
    threshold: Annotated[str, typer.Option(help="Silence that counts as stale (5m, 300s).")],
    interval: Annotated[str, typer.Option(help="How often the monitor looks (60s).")] = "120s",
    since: Since = "7d",
    until: Until = None,
    as_json: AsJson = False,
) -> None:
    """The stale rule at THRESHOLD, checked every INTERVAL, over the recorded claims,
    heartbeats and ends: attempts it would flag, false positives (flagged, then completed
    in the same attempt), recorded detections it would not make, recovery times."""
    start, end = replay_range(since, until, utc_now())
    report = _on_views(lambda store: replay_stale(
        store, threshold=parse_duration(threshold), interval=parse_duration(interval),
        start=start, until=end))
    _print(report, [
        ("events replayed", report.events, ""),
        ("attempts flagged", report.would_flag, report.really_flagged),
        ("jobs flagged", report.would_flag_jobs, ""),
        ("false positives (completed later)", report.false_positives,
         report.really_false_positives),
        ("flagged, not recorded", report.flagged_not_really, ""),
        ("recorded, not flagged", report.really_flagged_not_would, ""),
        *_recovery_rows("recovery", report.recovery, report.really_recovery),
    ], as_json)


@replay_app.command("alerts")
@user_errors
def alerts(  # noqa: PLR0917 - typer options
    group_wait: Annotated[str, typer.Option(help="How long an alert waits for others (60s).")],
    threshold: Annotated[int, typer.Option(min=1, help="Dead letters needed to alert.")] = 1,
    tick: Annotated[str, typer.Option(help="How often the sender looks.")] = "1s",
    since: Since = "7d",
    until: Until = None,
    as_json: AsJson = False,
) -> None:
    """Alert grouping with GROUP_WAIT over the recorded dead letters: how many posts, how
    late, against the recorded deliveries."""
    start, end = replay_range(since, until, utc_now())
    report = _on_views(lambda store: replay_alerts(
        store, group_wait=parse_duration(group_wait), threshold=threshold,
        tick=parse_duration(tick), start=start, until=end))
    _print(report, [
        ("events replayed", report.events, ""),
        ("dead letters", report.dead_letters, report.really_alerted),
        ("posts", report.posts, report.really_posts),
        *_recovery_rows("lateness", report.latency, report.really_latency),
    ], as_json)
