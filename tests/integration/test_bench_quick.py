"""``python -m bench`` keeps running: the whole orchestration at its tiniest size, into a
temporary document (docs/ is left alone). Only completion and the sections are checked,
never a timing."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("procrastinate", reason="the bench extra: pip install -e '.[bench]'")
pytest.importorskip("matplotlib", reason="the bench extra: pip install -e '.[bench]'")

from bench.__main__ import E2E, ENQUEUE, LIMITER, STALE, SUMMARY, main
from bench.archive import SECTION as ARCHIVE_SECTION
from bench.archive_year_doc import SECTION as YEAR_SECTION
from bench.http_api import SECTION as HTTP
from bench.projection_rebuild import SECTION as REBUILD
from bench.schedules import SECTION as SCHEDULES_SECTION
from bench.timetravel import SECTION as TIMETRAVEL
from bench.view_asof import SECTION as VIEW_ASOF
from bench.write_path import SECTION as WRITE_PATH
from tests.support.pg import PostgresServer


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_tiny_run_completes_and_writes_every_section(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Kept\n\nby someone else\n")
    outcome = main(["--tiny", "--output", str(doc)])

    assert outcome.failed == {}
    text = doc.read_text()
    for section in (SUMMARY, WRITE_PATH, HTTP, REBUILD, ENQUEUE, STALE, LIMITER, E2E,
                    TIMETRAVEL, VIEW_ASOF):  # fmt: skip
        assert text.count(f"{section}\n") == 1, section
    for bar in ("as of any of them, p99 < 20 ms", "`replay stale` >= 200,000 events/s",
                "checkpoint every 1,000, < 2 s"):  # issue 16's bars in the summary
        assert bar in text.split(SUMMARY)[1].split("\n## ")[0], bar
    assert text.count(f"{ARCHIVE_SECTION}\n") == 1  # issue 17
    assert text.count(f"{YEAR_SECTION}\n") == 1  # issue 17: a simulated year
    assert text.count(f"{SCHEDULES_SECTION}\n") == 1  # issue 18
    assert text.index(SUMMARY) < text.index("## Kept")  # the summary goes first
    assert "by someone else" in text
    images = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert images == ["end-to-end.png", "enqueue-vs-clients.png", "http-latency.png",
                      "limiter.png", "stale-scan-latency.png"]  # fmt: skip
    assert all((tmp_path / "img" / name).stat().st_size > 1000 for name in images)
