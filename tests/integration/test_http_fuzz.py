"""Schema-driven fuzzing: schemathesis generates valid and invalid requests for every
operation of ``/schema/openapi.json`` and checks that none answers 5xx and that every
response matches the document (status, content type, body schema).

On PostgreSQL (issue 8), the same run with an admin key, the dispatcher and the projection
runner (the dead-letter monitor afterwards: its alerts append), recorded request by request
(``tests/support/fuzz_hooks.py``): no 5xx, every event appended during the run falls in
exactly one request, no refused (4xx) request appended anything but the ``ReportRefused``
a 409 for a superseded attempt records, hand-written bad requests (oversized, malformed,
wrong content type, unknown fields, bad ids) are refused and append nothing, and ``ledger
audit --json`` exits 0 afterwards with nothing pending. A larger run (about 4,100 cases)::

    SCHEMATHESIS_MAX_EXAMPLES=200 pytest -s tests/integration/test_http_fuzz.py -k postgres
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import anyio.from_thread
import httpx
import pytest
from eventsourcing.utils import get_topic

from adapters.http.ratelimit import Preset
from adapters.http.wiring import build_http
from adapters.postgres.backend import EVENTS_TABLE
from adapters.service.backend import backend_for
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.dispatcher import DISPATCH
from adapters.service.parts import Part, dead_letter_part, dispatcher_part
from adapters.service.settings import Settings
from adapters.slack.webhook import LoggedAlerts
from ledger.access import Role, new_key
from ledger.action import Action
from ledger.commands import ClaimJob, CompleteJob, EnqueueJob, FailJob
from ledger.job import Job
from ledger.tally import RequestTally
from projections.queries.dead_letter_alerts import DeadLetterAlertQueries
from projections.registry import VIEWS
from tests.support.http import projections_running, serve_in_thread, wait_for

FAILED_CASES = re.compile(r"\b\d+ failed\b")
"""The summary's count of failed cases ("Authentication failed" is a warning about which
operations only met 401/403, random under the invalid-key limiter, not a failure)."""
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
))


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    tmp_path: Path,
) -> None:
    container = build(Settings(ledger_data_dir=tmp_path / "data"))
    parts = build_http(container)
    for name in ("public", "staff", "admin"):  # let the fuzzer reach the handlers
        parts.limiter.presets[name] = Preset(name, 100_000, 60)
    try:
        with serve_in_thread(parts) as running:
            with httpx.Client(base_url=running.base_url) as http:  # a job for the fuzzer to find
                http.post("/jobs", json={"customer_id": "acme"}).raise_for_status()
            result = subprocess.run(
                [
                    sys.executable, "-m", "schemathesis.cli", "run",
                    f"{running.base_url}/schema/openapi.json",
                    "--checks", CHECKS, "--max-examples", "20", "--seed", "20261128",
                    "--workers", "2", "--generation-database", "none", "--no-color",
                    "--request-timeout", "10",
                ],
                cwd=tmp_path, capture_output=True, text=True, timeout=150, check=False,
            )
    finally:
        container.close()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output
    assert not FAILED_CASES.search(output.split("SUMMARY")[-1]), output[-6000:]


# -- bad input at scale on PostgreSQL, then the audit ----------------------------------------

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
"""Per operation and phase: about 730 cases and 15-30 s at the default, about 1,400 at 50
and 4,100 at 200 (``SCHEMATHESIS_MAX_EXAMPLES=200``: the generator runs out of new cases
for some operations)."""
REPORT_REFUSED = get_topic(Job.ReportRefused)
"""The one event a refused request may append: a report from a superseded attempt is
refused with 409 and recorded (SPEC.md, guarantee 2)."""
BULK = "bulk:"
"""Marks (in :func:`events_between`) a job's event that names a bulk action."""
BACKGROUND = {get_topic(RequestTally.Recorded), get_topic(Job.Released),
              get_topic(Action.Progressed), get_topic(Action.Finished),
              get_topic(Action.Interrupted)}
"""What the served parts append on their own, not per request, so it may fall in any
interval: the rate-limit tallies the API appends every 15 s for the minutes that are over
(``adapters/http/tallies.py``), the scheduler's releases of jobs whose delay or
retry backoff is over (``adapters/service/scheduler.py``, ADR 100), and the batches of a
bulk action after its 202 (``adapters/service/action_runs.py``: the action's progress and
the jobs' events naming it, marked ``bulk:``)."""
REPORT_OPERATIONS = {f"POST /jobs/{{job_id}}/{report}"
                     for report in ("heartbeat", "complete", "fail", "cancelled")}
ROOT = Path(__file__).resolve().parents[2]
LEDGER = shutil.which("ledger")


def seed_jobs(container: Container) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Jobs in every state for the fuzzer to aim at (pending, in progress, completed,
    dead-lettered), and the claims of those in progress."""
    ledger, now = container.ledger, utc_now()

    def enqueue(max_attempts: int = 3) -> UUID:
        job = ledger.execute(EnqueueJob(customer_id="acme", max_attempts=max_attempts), now)
        return job.job_id

    pending = [enqueue() for _ in range(10)]
    running = [enqueue() for _ in range(5)]
    done = [enqueue() for _ in range(3)]
    dead = [enqueue(max_attempts=1) for _ in range(3)]
    for job_id in running + done + dead:
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w-1"), now)
    for job_id in done:
        ledger.execute(CompleteJob(job_id=job_id, worker_id="w-1", attempt=1), now)
    for job_id in dead:
        ledger.execute(FailJob(job_id=job_id, worker_id="w-1", attempt=1, error="boom"), now)
    return ([str(j) for j in pending + running + done + dead],
            {str(j): ("w-1", 1) for j in running})


@contextmanager
def running_part(part: Part) -> Iterator[None]:
    """A part of ``ledger serve`` in an event loop of its own until the block ends."""
    with anyio.from_thread.start_blocking_portal() as portal:
        future = portal.start_task_soon(part)
        try:
            yield
        finally:
            future.cancel()
            with contextlib.suppress(concurrent.futures.CancelledError):
                future.result(30)


@contextmanager
def dispatcher_running(container: Container) -> Iterator[None]:
    """The dispatcher (local queue on the same database) until the block ends."""
    transport = build_transport(container.settings, container.backend)
    try:
        with running_part(dispatcher_part(container, transport)):
            yield
    finally:
        anyio.run(transport.aclose)


def alerts_done(container: Container) -> bool:
    """Every view at the head of the log, and no dead letter waiting for its alert."""
    store = container.backend.open_views()
    try:
        head = store.head()
        if any(store.tracking(name).position < head for name in VIEWS):
            return False
        return not DeadLetterAlertQueries(store).pending()
    finally:
        store.close()


def log_head(container: Container) -> int:
    store = container.backend.open_views()
    try:
        return store.head()
    finally:
        store.close()


def caught_up(container: Container) -> bool:
    store = container.backend.open_views()
    try:
        head = store.head()
        positions = [store.tracking(name).position for name in [DISPATCH, *VIEWS]]
    finally:
        store.close()
    return all(position >= head for position in positions)


@dataclass
class FuzzFigures:
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    server_errors: list[dict[str, Any]] = field(default_factory=list)
    network_errors: list[dict[str, Any]] = field(default_factory=list)
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    appended_by_accepted: int = 0
    refused_recorded: int = 0
    """409s to a heartbeat or report that recorded one ``ReportRefused`` (and nothing else)."""
    refused_that_appended: list[dict[str, Any]] = field(default_factory=list)
    background: int = 0
    """Events the API appends on its own schedule (rate-limit tallies), not per request."""
    gaps: list[str] = field(default_factory=list)


def tally(
    records: list[dict[str, Any]], events: list[tuple[int, str]], start: int, end: int
) -> FuzzFigures:
    """Check a run's records against the events appended during it (``start`` < position
    <= ``end``): every event but the API's background tallies falls in exactly one
    request's interval (the head of the log before and after it), and no refused request
    appended anything but the recording of a refused report."""
    figures = FuzzFigures()
    topic_of = dict(events)

    def appended(after: int, upto: int) -> list[str]:
        topics = [topic_of[i] for i in range(after + 1, upto + 1) if i in topic_of]
        figures.background += sum(_background(t) for t in topics)
        return [t for t in topics if not _background(t)]

    previous = start
    for record in records:
        figures.cases += 1
        status = record["status"]
        if status is None:
            figures.network_errors.append(record)
            continue
        figures.by_status[status] += 1
        figures.by_operation.setdefault(record["operation"], Counter())[status] += 1
        before, after = record["before"], record["after"]
        if not previous <= before <= after:
            figures.gaps.append(f"out of order after {previous}: {record}")
            continue
        stray = appended(previous, before)
        if stray:  # appended between requests, by none of them
            figures.gaps.append(f"{stray} between {previous} and {before}, before {record}")
        previous = after
        topics = appended(before, after)
        if status >= 500:
            figures.server_errors.append(record)
        elif status >= 400:
            figures.refused += 1
            if (status == 409 and topics == [REPORT_REFUSED]
                    and record["operation"] in REPORT_OPERATIONS):
                figures.refused_recorded += 1
            elif topics:
                figures.refused_that_appended.append({**record, "topics": topics})
        else:
            figures.accepted += 1
            figures.appended_by_accepted += len(topics)
    stray = appended(previous, end)
    if stray:
        figures.gaps.append(f"{stray} after the last request ({previous} -> {end})")
    return figures


def _background(topic: str) -> bool:
    return topic in BACKGROUND or topic.startswith(BULK)


def events_between(container: Container, after: int, upto: int) -> list[tuple[int, str]]:
    """(position, topic) of every event after ``after`` up to ``upto``."""
    store = container.backend.open_views()
    try:
        out: list[tuple[int, str]] = []
        while page := store.read_events(after, 1000, upto):
            out += [(row[0], BULK + row[3] if b'"action_id":"' in row[4] else row[3])
                    for row in page]
            after = page[-1][0]
        return out
    finally:
        store.close()


# Hand-written bad requests the generator does not make: oversized and malformed bodies,
# wrong content types, unknown fields, bad ids. Each must be refused and append nothing.
BIG = "x" * (2 * 1024 * 1024)


def hand_written(job_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    json_type = {"content-type": "application/json"}
    return [
        ("POST", "/jobs", {"content": '{"customer_id": "acme", "payload": "' + BIG + '"}',
                           "headers": json_type}),
        ("POST", "/jobs", {"content": "{not json", "headers": json_type}),
        ("POST", "/jobs", {"content": "customer_id=acme",
                           "headers": {"content-type": "application/x-www-form-urlencoded"}}),
        ("POST", "/jobs", {"json": {"customer_id": "acme", "surprise": 1}}),
        ("POST", "/jobs", {"json": {"customer_id": 7}}),
        ("POST", "/jobs", {"json": {"customer_id": "acme", "max_attempts": 10**30}}),
        ("POST", "/jobs", {"json": [{"customer_id": "acme"}]}),
        ("POST", f"/jobs/{job_id}/claim", {"json": {"worker_id": "w", "extra": True}}),
        ("POST", f"/jobs/{job_id}/claim", {"json": {"worker_id": BIG}}),
        ("POST", "/jobs/not-a-uuid/claim", {"json": {"worker_id": "w"}}),
        ("POST", f"/jobs/{uuid4()}/claim", {"json": {"worker_id": "w"}}),
        ("POST", f"/jobs/{job_id}/heartbeat", {"json": {"worker_id": "w", "attempt": "1"}}),
        ("POST", f"/jobs/{job_id}/complete", {"json": {"worker_id": "w", "attempt": -1}}),
        ("POST", f"/jobs/{job_id}/fail", {"json": {"worker_id": "w", "attempt": 1}}),
        ("POST", "/heartbeats", {"json": {"worker_id": "w", "jobs": [{"job_id": "nope",
                                                                     "attempt": 1}]}}),
        ("POST", "/dlq/redrive", {"json": {"job_ids": ["nope"]}}),
        ("GET", "/jobs/../../etc/passwd", {}),
        ("GET", f"/queue/{'c' * 5000}", {}),
    ]


def test_the_tally_attributes_every_event_and_flags_refusals_that_appended() -> None:
    enqueued, background = "ledger.job:Job.Enqueued", next(iter(BACKGROUND))
    events = [(6, enqueued), (7, REPORT_REFUSED), (8, background)]
    records = [
        {"operation": "POST /jobs", "status": 201, "before": 5, "after": 6},
        {"operation": "POST /jobs/{job_id}/heartbeat", "status": 409, "before": 6, "after": 7},
        {"operation": "POST /jobs", "status": 422, "before": 8, "after": 8},  # tally before
    ]
    clean = tally(records, events, 5, 8)
    assert (clean.accepted, clean.refused, clean.refused_recorded) == (1, 2, 1)
    assert clean.background == 1
    assert clean.gaps == []
    assert clean.refused_that_appended == []
    assert clean.server_errors == []
    bad = [*records,
           {"operation": "POST /jobs", "status": 422, "before": 9, "after": 10},
           {"operation": "POST /jobs/{job_id}/fail", "status": 409, "before": 10, "after": 12},
           {"operation": "GET /health", "status": 503, "before": 12, "after": 12}]
    events += [(9, enqueued), (10, enqueued), (11, REPORT_REFUSED), (12, enqueued),
               (14, enqueued)]
    figures = tally(bad, events, 5, 14)
    assert len(figures.refused_that_appended) == 2
    assert len(figures.server_errors) == 1
    assert len(figures.gaps) == 2  # 9 between requests, 14 after the last


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300 + 30 * MAX_EXAMPLES)
def test_bad_input_at_scale_on_postgres_no_5xx_refusals_append_nothing_and_audit_passes(
    postgres_url: str, tmp_path: Path
) -> None:
    max_examples = MAX_EXAMPLES
    settings = Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url)
    container = build(settings)
    parts = build_http(container)
    for preset in list(parts.limiter.presets.values()):  # let the fuzzer reach the handlers
        parts.limiter.presets[preset.name] = Preset(preset.name, 10_000_000, 60)
    key, record = new_key(Role.ADMIN, None, "fuzz", utc_now())
    backend_for(settings).key_store().add(record)
    jobs, claims = seed_jobs(container)
    records_path = tmp_path / "requests.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks",  # its variables:
        "FUZZ_DATABASE_URL": postgres_url,
        "FUZZ_RECORD": str(records_path),
        "FUZZ_JOB_IDS": ",".join(jobs),
        "FUZZ_CLAIMS": json.dumps(claims),
        "FUZZ_SEED": "20261128",
        "FUZZ_EVENTS_TABLE": EVENTS_TABLE,
    }
    started = time.monotonic()
    try:
        with projections_running(container), dispatcher_running(container), \
                serve_in_thread(parts) as running:
            start = log_head(container)
            result = subprocess.run(
                [
                    sys.executable, "-m", "schemathesis.cli", "run",
                    f"{running.base_url}/schema/openapi.json",
                    "--checks", CHECKS, "--max-examples", str(max_examples),
                    "--seed", "20261128", "--workers", "1",  # one at a time: see fuzz_hooks
                    "--generation-database", "none", "--no-color", "--request-timeout", "10",
                    "--header", f"Authorization: Bearer {key}",
                ],
                cwd=tmp_path, env=env, capture_output=True, text=True,
                timeout=150 + 2 * max_examples * 15, check=False,
            )
            fuzzed = time.monotonic() - started
            end = log_head(container)
            events = events_between(container, start, end)
            refused_by_hand = []
            with httpx.Client(base_url=running.base_url, timeout=30,
                              headers={"Authorization": f"Bearer {key}"}) as http:
                for method, path, kwargs in hand_written(jobs[0]):
                    before = log_head(container)
                    answer = http.request(method, path, **kwargs)
                    since = events_between(container, before, log_head(container))
                    refused_by_hand.append((method, path[:60], answer.status_code, [
                        topic for _, topic in since if topic not in BACKGROUND]))
            # The alerts for what the run dead-lettered (they append, so only now): the
            # dead-letter monitor with a short group wait, until none is pending.
            alerting = Container(replace(settings, alert_group_wait_seconds=0.1),
                                 container.backend, container.ledger)
            with running_part(dead_letter_part(alerting, None, LoggedAlerts(), "log")):
                wait_for(lambda: alerts_done(container), timeout=60, interval=0.2)
            wait_for(lambda: caught_up(container), timeout=60, interval=0.2)
    finally:
        container.close()
    records = [json.loads(line) for line in records_path.read_text().splitlines()]
    figures = tally(records, events, start, end)
    assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
    audit = subprocess.run(
        [LEDGER, "audit", "--json", "--alert-grace", "0", "--in-flight", "0"], cwd=tmp_path,
        env={**env, "DATABASE_URL": postgres_url}, capture_output=True, text=True,
        timeout=300, check=False,
    )
    elapsed = time.monotonic() - started
    summary = {
        "max_examples": max_examples, "cases": figures.cases, "accepted_2xx": figures.accepted,
        "refused_4xx": figures.refused, "refused_409_recording_report_refused":
            figures.refused_recorded, "server_errors_5xx": len(figures.server_errors),
        "network_errors": len(figures.network_errors), "by_status": dict(figures.by_status),
        "events_appended": len(events), "appended_by_accepted": figures.appended_by_accepted,
        "background_tallies": figures.background,
        "hand_written_refused": len(refused_by_hand), "audit_exit": audit.returncode,
        "fuzz_seconds": round(fuzzed, 1), "total_seconds": round(elapsed, 1),
    }
    print("bad-input run:", json.dumps(summary, sort_keys=True))  # shown with -s
    print("statuses by operation:", json.dumps(
        {op: dict(sorted(c.items())) for op, c in sorted(figures.by_operation.items())}))
    print("hand-written:", json.dumps(refused_by_hand))
    print("audit:", audit.stdout[:3000])
    output = result.stdout + result.stderr
    assert figures.cases > 0, output[-6000:]
    assert not figures.server_errors, figures.server_errors[:5]
    assert not figures.network_errors, figures.network_errors[:5]
    assert not figures.refused_that_appended, figures.refused_that_appended[:5]
    assert not figures.gaps, figures.gaps[:5]
    assert len(events) == (figures.appended_by_accepted + figures.refused_recorded
                           + figures.background)
    assert result.returncode == 0, output[-6000:]
    assert not FAILED_CASES.search(output.split("SUMMARY")[-1]), output[-6000:]
    for method, path, status, topics in refused_by_hand:
        assert 400 <= status < 500, (method, path, status)
        assert topics == [], (method, path, status, topics)
    assert audit.returncode == 0, audit.stdout[-4000:] + audit.stderr[-4000:]
    report = json.loads(audit.stdout)
    assert report["ok"] is True, report
    assert report["pending"] == [], report  # every send and every alert done, none waiting
