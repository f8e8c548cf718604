"""Operator controls with the real ``ledger`` command (ADR 100), output piped: a dry run
prints the count and a sample, a cancel by id prefix, a bulk cancel, queues paused,
listed and resumed, and bad input as one line with nothing appended."""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path

from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.commands import EnqueueJob
from tests.e2e.test_cli_friction import UUID_TEXT, one_error_line, run
from tests.support.log import recorded_head


def seeded(tmp_path: Path) -> tuple[dict[str, str], list[str]]:
    settings = Settings(ledger_data_dir=tmp_path / "data")
    wired = build(settings)
    try:
        made = wired.ledger.execute_batch(
            [EnqueueJob(customer_id="acme", queue="emails") for _ in range(12)]
            + [EnqueueJob(customer_id="acme", queue="reports")], utc_now())
    finally:
        wired.close()
    ids = [str(r.job_id) for r in made if not isinstance(r, Exception)]
    return {"LEDGER_DATA_DIR": str(tmp_path / "data")}, ids


def head(env: dict[str, str]) -> int:
    wired = build(Settings(ledger_data_dir=Path(env["LEDGER_DATA_DIR"])))
    try:
        return recorded_head(wired.ledger.recorder)
    finally:
        wired.close()


def test_dry_run_then_cancel_by_prefix_then_in_bulk(tmp_path: Path) -> None:
    env, ids = seeded(tmp_path)
    before = head(env)
    dry = run(tmp_path, "jobs", "cancel", "--queue", "emails", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would act on 12 job(s); nothing was changed" in dry.stdout
    assert len(set(re.findall(UUID_TEXT, dry.stdout))) == 10
    assert head(env) == before
    one = sorted(ids[:12])[0]
    prefix = next(one[:n] for n in range(4, 36)
                  if sum(i.startswith(one[:n]) for i in ids) == 1)
    cancelled = run(tmp_path, "jobs", "cancel", prefix, "--reason", "customer asked", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    shown = json.loads(run(tmp_path, "jobs", "show", prefix, "--json", env=env).stdout)
    last = shown["history"][-1]
    assert (last["type"], last["data"]["actor"], last["data"]["reason"]) == (
        "Cancelled", f"cli:{getpass.getuser()}", "customer asked")
    timeline = run(tmp_path, "jobs", "show", prefix, env=env).stdout
    assert "customer asked" in timeline
    bulk = run(tmp_path, "jobs", "cancel", "--queue", "emails", "--reason", "bad template",
               "--json", env=env)
    assert bulk.returncode == 0, bulk.stderr
    summary = json.loads(bulk.stdout)
    # the one cancelled already matches the filter too: the ledger refuses it again
    assert (summary["state"], summary["total"], summary["acted"], summary["skipped"]) == (
        "finished", 12, 11, 1)
    again = run(tmp_path, "jobs", "cancel", one, env=env)
    assert again.returncode == 1
    listed = json.loads(run(tmp_path, "jobs", "list", "--status", "cancelled", "--json",
                            env=env).stdout)
    assert len(listed) == 12


def test_queues_pause_list_resume_and_limit(tmp_path: Path) -> None:
    env, _ = seeded(tmp_path)
    paused = run(tmp_path, "queues", "pause", "emails", "--reason", "smtp down", env=env)
    assert paused.returncode == 0, paused.stderr
    assert "queue emails: paused" in paused.stdout
    queues = {q["queue"]: q for q in json.loads(
        run(tmp_path, "queues", "list", "--json", env=env).stdout)}
    assert queues["emails"]["paused"] is True
    assert queues["emails"]["paused_by"] == f"cli:{getpass.getuser()}"
    assert queues["emails"]["paused_reason"] == "smtp down"
    assert queues["reports"]["paused"] is False
    table = run(tmp_path, "queues", "list", env=env).stdout
    assert "smtp down" in table
    limited = run(tmp_path, "queues", "limit", "emails", "5", env=env)
    assert "at most 5 running" in limited.stdout, limited.stderr
    run(tmp_path, "queues", "pause", "nightly", env=env)  # a queue without jobs
    listed = json.loads(run(tmp_path, "queues", "list", "--json", env=env).stdout)
    assert [q["paused"] for q in listed if q["queue"] == "nightly"] == [True]
    resumed = run(tmp_path, "queues", "resume", "emails", env=env)
    assert "queue emails: running, at most 5 running" in resumed.stdout, resumed.stderr


def test_bad_input_is_one_line_and_appends_nothing(tmp_path: Path) -> None:
    env, ids = seeded(tmp_path)
    before = head(env)
    cases = [
        (("jobs", "cancel", "--status", "exploded"), "unknown status 'exploded'"),
        (("jobs", "cancel", ids[0], "--reason", "odd\x01text"), "reason"),
        (("jobs", "cancel", "--queue", "emails", "--since", "2026-01-01"), "time zone"),
        (("jobs", "cancel"), "by id or select them with a filter"),
        (("jobs", "cancel", ids[0], "--queue", "emails"), "not both"),
        (("jobs", "cancel", "ffffffffffff"), "no job with an id starting"),
        (("queues", "limit", "emails", "0"), "at least 1"),
        (("queues", "limit", "emails", "--", "-3"), "at least 1"),
        (("queues", "pause", "bad name"), "queue"),
        (("jobs", "resume-action", "nope"), "not an action id"),
        (("jobs", "resume-action", "00000000-0000-0000-0000-000000000001"), "no action"),
    ]
    for args, message in cases:
        one_error_line(run(tmp_path, *args, env=env), message)
    assert head(env) == before
