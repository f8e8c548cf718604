"""bench.archive_year's section: where it goes in docs/benchmarks.md, and the hot
table's bound it states (issue 17)."""

from __future__ import annotations

from types import SimpleNamespace

from bench.archive import SECTION as ARCHIVE
from bench.archive_year_doc import SECTION, bound, placed
from bench.year_history import Mix


def test_the_section_goes_after_the_archive_section_and_is_replaced_in_place() -> None:
    text = f"# Benchmarks\n\n{ARCHIVE}\n\nthroughput\n\n## Console\n\npages\n"
    first = placed(text, f"{SECTION}\n\nyear one\n")
    assert first == (f"# Benchmarks\n\n{ARCHIVE}\n\nthroughput\n\n{SECTION}\n\nyear one\n\n"
                     "## Console\n\npages\n")
    again = placed(first, f"{SECTION}\n\nyear two\n")
    assert again == first.replace("year one", "year two")
    assert placed("# Benchmarks\n", f"{SECTION}\n\nx\n") == f"# Benchmarks\n\n{SECTION}\n\nx\n"


def test_the_bound_is_the_cut_and_one_archive_interval_plus_what_never_ends() -> None:
    plan = SimpleNamespace(days=365, older_than=30, every=7, running=10,
                           mix=Mix(1000, resolved=0.01, unresolved=0.002))
    per_job = {"completed": 48, "resolved": 17, "unresolved": 13, "running": 47}
    figures = SimpleNamespace(plan=plan, per_job=per_job)
    assert Mix(1000).counts() == (988, 10, 2)
    assert bound(figures) == (37 * (988 * 48 + 10 * 17) + 365 * 2 * 13 + 10 * 47
                              + 48 + 17 + 13 + 47)
