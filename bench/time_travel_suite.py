"""Issue 16's benchmarks in ``python -m bench``: :mod:`bench.timetravel` (a job as of any
of its events, ``replay stale``) and :mod:`bench.view_asof` (``job_status`` a million events
back), each at the size of the run's mode, its section written into the run's document,
and its bars as rows of the summary (figure, baseline of the same run, ratio, verdict)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench import timetravel, view_asof
from bench.common import mark
from tests.support.pg import PostgresServer

SIZES: dict[str, tuple[timetravel.Size, view_asof.Size]] = {
    "full": (timetravel.FULL, view_asof.FULL),
    "quick": (timetravel.QUICK, view_asof.QUICK),
    "tiny": (timetravel.TINY, view_asof.TINY),
}
VIEW_BAR_SECONDS = 2.0


def _command() -> str:
    return " ".join(["python -m bench", *sys.argv[1:]])


def run_timetravel(server: PostgresServer, mode: str, doc: Path) -> dict[str, Any]:
    figures = timetravel.run(server, SIZES[mode][0])
    timetravel.write_section(timetravel.section(_command(), figures), doc)
    return figures


def run_view_asof(server: PostgresServer, mode: str, doc: Path) -> dict[str, Any]:
    figures = view_asof.run(server, SIZES[mode][1])
    view_asof.write_section(doc, view_asof.section(_command(), figures))
    return figures


def summary_rows(travel: dict[str, Any] | None, view: dict[str, Any] | None,
                 failed: dict[str, str]) -> list[str]:  # fmt: skip
    """The summary's rows of issue 16's three bars (or why a benchmark did not run)."""
    rows = []
    if travel is not None:
        asof, replay = travel["asof"], travel["replay"]
        pos, at, base = asof["position"], asof["time"], asof["baseline"]
        worst = max(pos["p99"], at["p99"])
        rows.append(
            f"| a job of {asof['events']:,} events as of any of them, p99 < "
            f"{timetravel.JOB_BAR_MS:g} ms | `@P` p99 {pos['p99']:.2f} ms, as of a time p99 "
            f"{at['p99']:.2f} ms | folded from its first event p99 {base['p99']:.2f} ms | "
            f"{base['p99'] / worst:.1f}x | {mark(worst < timetravel.JOB_BAR_MS)} |"
        )
        rows.append(
            f"| `replay stale` >= {timetravel.REPLAY_BAR:,.0f} events/s | "
            f"{replay['rate']:,.0f} events/s over {replay['events']:,} events | eventsourcing's "
            f"read and mapper {replay['baseline_rate']:,.0f} events/s | "
            f"{replay['rate'] / max(replay['baseline_rate'], 1):.1f}x | "
            f"{mark(replay['rate'] >= timetravel.REPLAY_BAR)} |"
        )
    else:
        rows.append(f"| a job as of any event, replay stale | not run: "
                    f"{failed.get('timetravel', 'skipped')} | | | |")  # fmt: skip
    if view is not None:
        fast, slow, size = view["fast"], view["slow"], view["size"]
        rows.append(
            f"| `job_status` as of {size.back:,} events back, checkpoint every "
            f"{size.every:,}, < {VIEW_BAR_SECONDS:g} s | {fast[0]:.3f} s | no checkpoint "
            f"{slow[0]:.3f} s | {view['ratio']:.1f}x | {mark(fast[0] < VIEW_BAR_SECONDS)} |"
        )
    else:
        rows.append(f"| a view as of a past moment | not run: "
                    f"{failed.get('view_asof', 'skipped')} | | | |")  # fmt: skip
    return rows
