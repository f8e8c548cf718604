"""Schemathesis CLI hooks for the bad-input run on PostgreSQL
(``SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks``, see tests/integration/test_http_fuzz.py).

Around every request the CLI sends, they read the head of the ledger's log (the highest
``notification_id``) before and after, and append one JSON line to ``$FUZZ_RECORD``: the
method, path, status and both heads. With one worker, each event a request appends falls
in its interval, so the test can say which request appended what (the API's background
rate-limit tallies may fall anywhere; the test tells them apart by topic).

A share of the generated job ids (when they are UUIDs at all) is swapped for a real job's
(``$FUZZ_JOB_IDS``, plus every job the run creates), and a share of the heartbeats and
reports aimed at a claimed job carry its worker and attempt (``$FUZZ_CLAIMS``, plus every
claim the run makes), so that requests get past the lookup and the fencing to the ledger's
decisions: completions, retries, dead letters, redrives.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from typing import Any, TextIO
from uuid import UUID

import psycopg
import schemathesis
from schemathesis import Case, HookContext, Response

URL_VARIABLE = "FUZZ_DATABASE_URL"
RECORD_VARIABLE = "FUZZ_RECORD"
JOBS_VARIABLE = "FUZZ_JOB_IDS"
CLAIMS_VARIABLE = "FUZZ_CLAIMS"
"""JSON: ``{job_id: [worker_id, attempt]}`` for the jobs in progress at the start."""
REPORTS = ("/jobs/{job_id}/heartbeat", "/jobs/{job_id}/complete", "/jobs/{job_id}/fail")
SEED_VARIABLE = "FUZZ_SEED"
EVENTS_TABLE_VARIABLE = "FUZZ_EVENTS_TABLE"
AIM_SHARE = 0.5
"""The share of UUID job ids replaced by a real job's."""


class Recorder:
    def __init__(self) -> None:
        self.conn = psycopg.connect(os.environ[URL_VARIABLE], autocommit=True)
        self.out: TextIO = open(os.environ[RECORD_VARIABLE], "a")  # noqa: SIM115
        table = os.environ[EVENTS_TABLE_VARIABLE]
        self.head_sql = f"SELECT coalesce(max(notification_id), 0) FROM {table}"
        self.jobs = [j for j in os.environ.get(JOBS_VARIABLE, "").split(",") if j]
        self.claims: dict[str, tuple[str, int]] = {
            job: (worker, attempt)
            for job, (worker, attempt) in json.loads(os.environ.get(CLAIMS_VARIABLE, "{}")).items()
        }
        self.rng = random.Random(int(os.environ.get(SEED_VARIABLE, "0")))
        self.before: int | None = None

    def head(self) -> int:
        row = self.conn.execute(self.head_sql).fetchone()
        return int(row[0]) if row else 0

    def write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()


_recorder: Recorder | None = None


def recorder() -> Recorder:
    global _recorder  # one per CLI process, opened on first use
    if _recorder is None:
        _recorder = Recorder()
    return _recorder


def _is_uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


@schemathesis.hook
def before_call(context: HookContext, case: Case[Any], kwargs: dict[str, Any]) -> None:
    rec = recorder()
    job_id = case.path_parameters.get("job_id")
    if (job_id is not None and rec.jobs and _is_uuid(job_id)
            and rec.rng.random() < AIM_SHARE):
        case.path_parameters["job_id"] = rec.rng.choice(rec.jobs)
    claim = rec.claims.get(str(case.path_parameters.get("job_id")))
    if (claim is not None and case.path in REPORTS and isinstance(case.body, dict)
            and rec.rng.random() < AIM_SHARE):
        case.body["worker_id"], case.body["attempt"] = claim
    rec.before = rec.head()


@schemathesis.hook
def after_call(context: HookContext, case: Case[Any], response: Response) -> None:
    rec = recorder()
    after = rec.head()
    before = rec.before if rec.before is not None else after
    rec.before = None
    request = response.request
    path = request.path_url
    rec.write({
        "method": request.method, "path": path, "operation": f"{case.method} {case.path}",
        "status": response.status_code, "before": before, "after": after,
    })
    with contextlib.suppress(ValueError, KeyError, TypeError):  # the checks report it
        if response.status_code == 201 and case.path == "/jobs":
            rec.jobs.append(str(json.loads(response.content)["job_id"]))
        elif (response.status_code == 200 and case.path == "/jobs/{job_id}/claim"
              and isinstance(case.body, dict)):
            claimed = json.loads(response.content)
            rec.claims[str(claimed["job_id"])] = (str(case.body["worker_id"]),
                                                  int(claimed["attempt"]))


@schemathesis.hook
def after_network_error(context: HookContext, case: Case[Any], request: Any) -> None:
    rec = recorder()
    rec.before = None
    rec.write({"method": case.method, "path": case.formatted_path,
               "operation": f"{case.method} {case.path}", "status": None,
               "error": "network"})
