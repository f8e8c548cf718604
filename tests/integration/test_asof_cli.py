"""Views as of a moment through the real ``ledger`` command and the checkpointer's round,
on SQLite and PostgreSQL: ``projections checkpoint``, ``projections show --as-of``,
``jobs list --as-of`` with filters, ``projections diff`` (ADR 90)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from adapters.service.backend import backend_for
from adapters.service.checkpointer import checkpoint_round
from projections.memory import MemoryView
from projections.registry import VIEWS, get_view
from projections.runner import Runner
from tests.support.projection_env import Backend, Workload
from tests.support.projection_events import decoded

LEDGER = shutil.which("ledger")


def ledger(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    assert LEDGER is not None
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | backend.env
    return subprocess.run([LEDGER, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def fed(backend: Backend, steps: int) -> tuple[Workload, int]:
    workload = Workload(backend.ledger())
    workload.run(steps)
    runner = Runner(backend.store(), list(VIEWS.values()))
    runner.acquire()
    runner.catch_up()
    runner.release()
    return workload, runner.store.head()


def folded_to(backend: Backend, view: str, position: int) -> MemoryView:
    memory = MemoryView(get_view(view))
    memory.feed(decoded(backend.store().read_events(0, position, position)))
    return memory


def one_error(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 1, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert words in lines[0], lines[0]


def test_jobs_list_show_and_diff_as_of_a_position(backend: Backend) -> None:
    _, head = fed(backend, 12)
    made = ledger(backend, "projections", "checkpoint", "job_status")
    assert made.returncode == 0, made.stderr
    assert f"at position {head}" in made.stdout
    middle = head // 2
    expected = folded_to(backend, "job_status", middle)

    listed = ledger(backend, "jobs", "list", "--as-of", f"@{middle}", "--status", "pending",
                    "--customer", "acme", "--limit", "1000", "--json")
    assert listed.returncode == 0, listed.stderr
    want = sorted(
        (r for r in expected.rows["job_status"].values()
         if r["status"] == "pending" and r["customer_id"] == "acme"),
        key=lambda r: (r["enqueued_at"], r["job_id"]),
    )
    assert [j["job_id"] for j in json.loads(listed.stdout)] == [r["job_id"] for r in want]

    shown = json.loads(ledger(backend, "projections", "show", "job_status", "--as-of",
                              f"@{head}", "--json", "--limit", "5").stdout)
    assert shown["position"] == head
    assert shown["checkpoint"]["position"] == head
    assert shown["folded_events"] == 0
    assert shown["tables"]["job_status"]["rows"] == len(
        folded_to(backend, "job_status", head).rows["job_status"]
    )
    assert len(shown["tables"]["job_status"]["shown"]) == 5

    changed = json.loads(ledger(backend, "projections", "diff", "job_status", "--from",
                                f"@{middle}", "--to", f"@{head}", "--json", "--limit",
                                "100000").stdout)
    tables = folded_to(backend, "job_status", head).rows  # job_status, error_texts, job_errors
    after = tables["job_status"]
    moved = {k[0] for k, row in after.items() if expected.rows["job_status"].get(k) != row}
    assert {r["key"][0] for r in changed["rows"] if r["table"] == "job_status"} == moved
    assert changed["changed"] == sum(
        1 for name, rows in tables.items() for k, row in rows.items()
        if expected.rows[name].get(k) != row
    )
    some: dict[str, Any] = next(r for r in changed["rows"] if r["table"] == "job_status")
    assert some["events"]
    assert all(middle < e["position"] <= head for e in some["events"])
    assert all(e["job"] == some["key"][0] for e in some["events"])


def test_odd_moments_are_one_line_each(backend: Backend) -> None:
    _, head = fed(backend, 2)
    for args, words in [
        (("jobs", "list", "--as-of", f"@{head + 1}"), "beyond the head"),
        (("jobs", "list", "--as-of", "@-3"), "position"),
        (("jobs", "list", "--as-of", "2999-01-01T00:00Z"), "in the future"),
        (("jobs", "list", "--as-of", "2026-03-02T09:00"), "needs a zone"),
        (("projections", "show", "job_status", "--as-of", "soon"), "not a time"),
        (("projections", "diff", "job_status", "--from", f"@{head}", "--to", "@1"),
         "after --to"),
        (("projections", "show", "nope", "--as-of", "@1"), "no view named"),
    ]:
        one_error(ledger(backend, *args), words)


def test_the_checkpointer_round_takes_views_that_moved_far_enough_and_prunes(
    backend: Backend,
) -> None:
    workload, _ = fed(backend, 3)
    store = backend_for(backend.settings)
    views = list(VIEWS.values())
    first = checkpoint_round(store, views, every=1, keep=2, now=workload.now)
    assert sorted(c.view for c in first) == sorted(VIEWS)
    assert checkpoint_round(store, views, every=1, keep=2, now=workload.now) == []
    for _ in range(3):
        fed_more = Workload(backend.containers[0], seed=len(backend.stores))
        fed_more.run(1)
        runner = Runner(backend.store(), views)
        runner.acquire()
        runner.catch_up()
        runner.release()
        assert checkpoint_round(store, views, every=1, keep=2, now=workload.now)
    checkpoints = store.checkpoints()
    try:
        assert len(checkpoints.list("job_status")) == 2
    finally:
        checkpoints.close()
