"""``ledger jobs show --as-of`` and ``ledger replay`` as a user runs them: the real command
on a ledger made in-process, JSON and tables, odd values one line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from tests.e2e.test_cli_friction import one_error_line, run


def test_a_job_as_of_a_moment_and_replays_from_the_command_line(tmp_path: Path) -> None:
    wired = build(Settings(ledger_data_dir=tmp_path / "ledger-data"))
    try:
        job_id = wired.ledger.execute(EnqueueJob(customer_id="acme"), utc_now()).job_id
        wired.ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), utc_now())
        wired.ledger.execute(RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w"), utc_now())
    finally:
        wired.close()
    short = str(job_id)[:8]
    then = run(tmp_path, "jobs", "show", short, "--as-of", "@1", "--json")
    assert then.returncode == 0, then.stderr
    body = json.loads(then.stdout)
    assert (body["position"], body["version"], body["job"]["status"]) == (1, 1, "pending")
    table = run(tmp_path, "jobs", "show", short, "--as-of", "@3")
    assert "in_progress" in table.stdout
    last = run(tmp_path, "jobs", "show", short, "--as-of", "9999-12-31T23:59:59Z", "--json")
    assert last.returncode == 0, last.stderr  # the whole log, not an overflow's traceback
    assert json.loads(last.stdout)["job"]["status"] == "in_progress"
    one_error_line(run(tmp_path, "jobs", "show", short, "--as-of", "9999-12-31T23:59-01:00"),
                   "representable")
    one_error_line(run(tmp_path, "jobs", "show", short, "--as-of", "@4"), "beyond the head")
    one_error_line(run(tmp_path, "jobs", "show", short, "--as-of", "noon"), "not a time")
    one_error_line(run(tmp_path, "jobs", "show", short, "--as-of", "2000-01-01T00:00Z"),
                   "not enqueued yet")
    replayed = run(tmp_path, "replay", "stale", "--threshold", "1ms", "--interval", "1ms",
                   "--since", "1d", "--until", "0s", "--json")
    assert replayed.returncode == 0, replayed.stderr
    report = json.loads(replayed.stdout)
    assert (report["events"], report["would_flag"], report["really_flagged"]) == (2, 1, 0)
    assert "attempts flagged" in run(tmp_path, "replay", "stale", "--threshold", "5m").stdout
    alerts = run(tmp_path, "replay", "alerts", "--group-wait", "60s", "--json")
    assert json.loads(alerts.stdout)["dead_letters"] == 0
    one_error_line(run(tmp_path, "replay", "stale", "--threshold", "-5m"), "not a duration")
    one_error_line(run(tmp_path, "replay", "stale", "--threshold", "5m", "--since", "soon"),
                   "give a duration")
