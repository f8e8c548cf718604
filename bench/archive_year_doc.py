"""The section ``bench.archive_year`` writes: the simulated year's figures against the
issue's bars (issue 17), placed right after the archive throughput section."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import archive as archive_bench
from bench.common import load_note

SECTION = "## Archive segments: a simulated year"
ISSUE_JOBS_PER_DAY = 100_000
BAR = 1.20
"""Each figure at the year's end within 20% of the fresh ledger's."""


def bound(f: Any) -> int:
    """The hot events table's most rows: the jobs of the cut plus the days between two
    archive runs, every unresolved dead letter of the year, the running jobs."""
    plan, per = f.plan, f.per_job
    completed, resolved, unresolved = plan.mix.counts()
    days = plan.older_than + plan.every
    return int(days * (completed * per["completed"] + resolved * per["resolved"])
            + plan.days * unresolved * per["unresolved"] + plan.running * per["running"]
            + sum(per.values()))


def ratio(year: float, fresh: float) -> str:
    value = year / fresh if fresh else float("inf")
    return f"{value:.2f}x | {'met' if value <= BAR else '**missed**'}"


def summary(f: Any) -> str:
    y, n = f.year, f.fresh
    return (f"year: rebuild {y.rebuild_seconds:.2f} s audit {y.audit_seconds:.2f} s "
            f"(ok {y.audit_ok} {y.audit_note}) beat p99 {y.beat_p99_ms:.1f} ms; fresh: "
            f"rebuild {n.rebuild_seconds:.2f} s audit {n.audit_seconds:.2f} s (ok "
            f"{n.audit_ok} {n.audit_note}) beat p99 {n.beat_p99_ms:.1f} ms; hot max "
            f"{max(s.rows_before for s in f.samples):,} bound {bound(f):,}")


def _scale(f: Any) -> str:
    plan = f.plan
    per_day = plan.mix.jobs
    return (f"{plan.days} simulated days x {per_day:,} jobs a day ({f.written_events:,} "
            f"events written with COPY: completed jobs of {f.per_job['completed']} events, "
            f"{plan.mix.resolved:.0%} dead letters redriven then completed "
            f"({f.per_job['resolved']}), {plan.mix.unresolved:.1%} left unresolved "
            f"({f.per_job['unresolved']}); {plan.running} jobs running at the end): "
            f"1/{ISSUE_JOBS_PER_DAY // per_day:,} of the issue's 100,000 jobs a day. "
            f"The archive policy ran every {plan.every} simulated days with "
            f"`--older-than {plan.older_than}d` ({len(f.samples)} runs)")


def _table(f: Any) -> list[str]:
    y, n, samples = f.year, f.fresh, f.samples
    most = max(samples, key=lambda s: s.rows_before)
    late = samples[len(samples) // 2:]
    full = _first_full(f)
    status = f.status
    return [
        "| measure | at the year's end | fresh ledger, same hot window | ratio | bar (20%) |",
        "|---|---:|---:|---:|---|",
        f"| `ledger projections rebuild job_status` (from the newest checkpoint, then a "
        f"checkpoint) | {y.rebuild_seconds:.2f} s | {n.rebuild_seconds:.2f} s | "
        f"{ratio(y.rebuild_seconds, n.rebuild_seconds)} |",
        f"| `ledger audit` (every view verified; the archive's chain and indexes) | "
        f"{y.audit_seconds:.2f} s | {n.audit_seconds:.2f} s | "
        f"{ratio(y.audit_seconds, n.audit_seconds)} |",
        f"| a heartbeat through the batch path, p99 ({f.plan.heartbeats:,} from "
        f"{f.plan.threads} threads; p50 {y.beat_p50_ms:.1f} / {n.beat_p50_ms:.1f} ms) | "
        f"{y.beat_p99_ms:.1f} ms | {n.beat_p99_ms:.1f} ms | "
        f"{ratio(y.beat_p99_ms, n.beat_p99_ms)} |",
        "",
        "| the year's archive | figure |", "|---|---:|",
        f"| hot events, most before an archive (day {most.day}) / the bound | "
        f"**{most.rows_before:,}** / {bound(f):,} |",
        f"| hot events after the last archive / on the fresh ledger | {y.hot_rows:,} / "
        f"{n.hot_rows:,} |",
        f"| hot events table with its indexes, bytes: day {full.day} (the window first full) "
        f"/ the most / at the end | {full.hot_bytes / 1e6:,.1f} / "
        f"{max(s.hot_bytes for s in samples) / 1e6:,.1f} / {y.hot_bytes / 1e6:,.1f} MB |",
        f"| segments, bytes, bytes per event | {status['segments']} / "
        f"{status['archive_bytes'] / 1e6:,.1f} MB / "
        f"{status['archive_bytes'] / max(status['archived_events'], 1):.1f} B |",
        f"| archived jobs / their index (archived_jobs + manifest) | "
        f"{status['archived_jobs']:,} / {samples[-1].index_bytes / 1e6:,.1f} MB |",
        f"| view checkpoints kept / their bytes (first run, last run) | {f.checkpoints} / "
        f"{samples[0].checkpoint_bytes / 1e6:,.1f} MB, "
        f"{samples[-1].checkpoint_bytes / 1e6:,.1f} MB |",
        f"| one archive run, seconds (first, median of the second half, last) | "
        f"{samples[0].archive_seconds:.2f}, "
        f"{sorted(s.archive_seconds for s in late)[len(late) // 2]:.2f}, "
        f"{samples[-1].archive_seconds:.2f} |",
        f"| `job_status` rows at the end (views keep archived jobs) / fresh | "
        f"{y.job_status_rows:,} / {n.job_status_rows:,} |",
        f"| audit passed (year / fresh) | {_passed(y)} / {_passed(n)} |",
    ]


def _passed(figures: Any) -> str:
    return "yes" if figures.audit_ok else f"**no** {figures.audit_note}"


def section(command: str, f: Any) -> str:
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({f.seconds / 60:.1f} minutes), {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, a throwaway PostgreSQL on "
        f"the same machine; {load_note()}. Scale: {_scale(f)}.", "",
        *_table(f), "", _reading(f), "",
    ])


def _first_full(f: Any) -> Any:
    """The first archive run after the hot window first filled."""
    return next((s for s in f.samples if s.day >= f.plan.older_than + f.plan.every),
                f.samples[-1])


def _within(f: Any) -> str:
    y, n = f.year, f.fresh
    met = (y.rebuild_seconds <= BAR * n.rebuild_seconds, y.audit_seconds <= BAR * n.audit_seconds)
    return {(True, True): "both still within the bar", (False, False): "both past the bar"}.get(
        met, "the rebuild within the bar, the audit not" if met[0] else
        "the audit within the bar, the rebuild not")


def _reuse(first: int, end: int) -> str:
    if end <= first * 1.05:
        return ": the archived rows' space is reused"
    return (f" ({end / first - 1:+.0%}) while the rows did not grow: the freed space is not "
            "all reused (cause not established)")


def _reading(f: Any) -> str:
    y, n = f.year, f.fresh
    grows = y.job_status_rows / max(n.job_status_rows, 1)
    full = _first_full(f)
    return (
        "Reading: the hot events table's rows stay under their bound all year (the cut's "
        "days plus the days between two archive runs, the year's unresolved dead letters, "
        "the running jobs). Its bytes, with VACUUM (ANALYZE) after each archive standing "
        "in for the autovacuum of the wall-clock week a simulated week stands for, went "
        f"from {full.hot_bytes / 1e6:,.1f} MB on day {full.day} to "
        f"{y.hot_bytes / 1e6:,.1f} MB at the end{_reuse(full.hot_bytes, y.hot_bytes)}. "
        "An archive run takes the views' "
        "checkpoints only when the newest are older than its cut (ADR 115), so they grow "
        "once a cut period, not once a run. What still grows with history is every job's "
        f"row in the views: `job_status` holds {grows:.0f}x the fresh ledger's rows at the "
        "year's end; a rebuild of it starts from a checkpoint holding them all, and the "
        "audit compares them all and verifies each view from such a checkpoint, so both "
        f"cost more per year of history ({_within(f)} at this scale); the "
        "heartbeat's path reads only the hot table. Each ledger was measured in turns: "
        f"{f.plan.rounds} rounds of heartbeats and of rebuilds (medians), one audit each.")


def write(doc: Path, text_section: str) -> None:
    """Replace this section of ``doc`` (see :func:`placed`)."""
    doc.write_text(placed(doc.read_text() if doc.exists() else "# Benchmarks\n", text_section))


def placed(text: str, text_section: str) -> str:
    """``text`` with this section replaced; a new one goes right after the archive's
    section (the archive throughput's), else at the end."""
    body = text_section.rstrip("\n") + "\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    after = re.compile(rf"^{re.escape(archive_bench.SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    elif (found := after.search(text)) is not None:
        end = found.end()
        text = text[:end].rstrip("\n") + "\n\n" + body + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + body
    return text.rstrip("\n") + "\n"
