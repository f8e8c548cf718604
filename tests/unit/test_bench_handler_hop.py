"""``python -m bench.handler_hop`` runs both hops and prints one row each (not timed)."""

from __future__ import annotations

import pytest

from bench import handler_hop


def test_both_hops_run_every_job_and_print_a_row(capsys: pytest.CaptureFixture[str]) -> None:
    handler_hop.main(["--blocks", "1", "--jobs", "40", "--concurrency", "4"])
    out = capsys.readouterr().out
    assert "| anyio |" in out
    assert "| executor |" in out
