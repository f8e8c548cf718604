"""Filtering jobs by error text from the error index (ADR 141), on SQLite and PostgreSQL:
the same jobs, in the same order, as the scan of every erring job's text it replaces
(``job_status.action_page``, kept as the reference), odd text included; the migration
that indexed existing rows gives what the fold gives; a 10 KB needle is refused with a
reason (422 invalid_filter, as every invalid filter of the console)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg

from adapters.postgres.migrate import migrations as postgres_migrations
from adapters.service.bootstrap import utc_now
from adapters.sqlite.migrate import migrations as sqlite_migrations
from ledger.action import ActionFilter, checked_filter
from ledger.application import JobLedger
from ledger.commands import ClaimJob, DetectStale, EnqueueJob, FailJob
from projections.job_errors import ERROR_TEXTS, JOB_ERRORS, error_id
from projections.queries.action_targets import ActionTargets
from projections.queries.job_status import ROWS
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from projections.store import LIVE, ViewStore
from tests.support.console import console_api
from tests.support.projection_env import Backend

LONG = "x" * 1500 + " tail-of-a-long-error 100% done_ 'q' \"dq\" \\ é 日本 🙂"
ERRORS = [
    "Timeout talking to upstream 1", "Timeout talking to upstream 2", "100% of the quota",
    "a_b_c underscore", "it's quoted", 'say "hi"', "back\\slash", "café crème", "日本語のエラー",
    "emoji 🙂 failed", "tab\tand\nnewline", LONG, "%", "_", "Timeout",
]
TIMEOUT = checked_filter({"error_contains": "Timeout"})
NEEDLES = [
    "Timeout", "upstream 2", "%", "_", "'", '"', "\\", "é", "日本", "🙂", "\t", "\n",
    "tail-of-a-long-error 100% done_", "100%", "a_b", "nothing matches this", "stale:",
    "T", "e", "x" * 200,
]


def failing_jobs(ledger: JobLedger) -> list[UUID]:
    """Jobs failed with each error text (three of each, two queues), some failed twice
    with another text, and stale detections."""
    now = utc_now()
    made = ledger.execute_batch(
        [EnqueueJob(customer_id="acme", queue=("emails", "reports")[n % 2], max_attempts=3)
         for n in range(3 * len(ERRORS) + 4)], now)
    ids = [r.job_id for r in made if not isinstance(r, Exception)]
    ledger.execute_batch([ClaimJob(job_id=i, worker_id="w") for i in ids], now)
    ledger.execute_batch([FailJob(job_id=i, attempt=1, worker_id="w",
                                  error=ERRORS[n % len(ERRORS)])
                          for n, i in enumerate(ids[:-4])], now)
    again = ids[:5]  # a job's text is its latest one
    ledger.execute_batch([ClaimJob(job_id=i, worker_id="w") for i in again], now)
    ledger.execute_batch([FailJob(job_id=i, attempt=2, worker_id="w", error="second text")
                          for i in again], now)
    later = now + timedelta(hours=1)  # the last four go silent: stale
    ledger.execute_batch([DetectStale(job_id=i, attempt=1, detected_by="test")
                          for i in ids[-4:]], later)
    return ids


def caught_up(backend: Backend) -> ViewStore:
    store = backend.store()
    catch_up_unfed(store, [VIEWS["job_status"]])
    return store


def by_scan(store: ViewStore, job_filter: ActionFilter, after: UUID | None,
            limit: int) -> list[Any]:
    """The previous behaviour: every erring job's text searched (strpos / instr)."""
    params = {name: getattr(job_filter, name) for name in (
        "status", "customer_id", "queue", "since", "until", "error_contains")}
    return ROWS.decode_all(store.query("job_status.action_page",
                                       params | {"after": after, "limit": limit}))


def paged(targets: ActionTargets, job_filter: ActionFilter, size: int) -> list[UUID]:
    """Every matching job, page after page (keyset)."""
    found: list[UUID] = []
    while True:
        page = targets.page(job_filter, found[-1] if found else None, size)
        found += [row.job_id for row in page]
        if len(page) < size:
            return found


def test_the_index_finds_what_the_scan_found(backend: Backend) -> None:
    failing_jobs(backend.ledger().ledger)
    store = caught_up(backend)
    targets = ActionTargets(store)
    for needle in NEEDLES:
        for extra in ({}, {"queue": "emails"}, {"status": "pending", "queue": "reports"}):
            job_filter = checked_filter({"error_contains": needle, **extra})
            expected = by_scan(store, job_filter, None, 1000)
            assert targets.page(job_filter, None, 1000) == expected, (needle, extra)
            assert paged(targets, job_filter, 2) == [r.job_id for r in expected]
            assert targets.count(job_filter) == len(expected), (needle, extra)
            assert targets.count_upto(job_filter, 3) == min(3, len(expected))
    assert len(by_scan(store, checked_filter({"error_contains": "stale:"}), None, 99)) == 4
    assert len(by_scan(store, checked_filter({"error_contains": "second text"}), None, 9)) == 5


def test_the_index_holds_each_text_once_and_each_jobs_latest(backend: Backend) -> None:
    ids = failing_jobs(backend.ledger().ledger)
    store = caught_up(backend)
    texts = {row[0]: row[1] for row in store.rows(ERROR_TEXTS, LIVE)}
    assert texts == {error_id(t): t for t in {*ERRORS, "second text", *_stale_texts(store)}}
    jobs = {UUID(str(row[0])): row[1] for row in store.rows(JOB_ERRORS, LIVE)}
    assert jobs[ids[0]] == error_id("second text")
    assert jobs[ids[5]] == error_id(ERRORS[5])
    assert len(jobs) == len(ids)


def _stale_texts(store: ViewStore) -> set[str]:
    rows = by_scan(store, checked_filter({"error_contains": "stale:"}), None, 99)
    return {row.last_error for row in rows}


def test_the_migration_indexes_existing_rows_as_the_fold_does(backend: Backend) -> None:
    failing_jobs(backend.ledger().ledger)
    store = caught_up(backend)
    folded = {t.name: sorted(map(str, store.rows(t, LIVE))) for t in (JOB_ERRORS, ERROR_TEXTS)}
    assert folded["job_errors"]
    is_postgres = backend.settings.database_url is not None
    found = postgres_migrations() if is_postgres else sqlite_migrations()
    (migration,) = [m for m in found if m.version == 66]
    inserts = [s for s in migration.statements if str(s).lstrip().startswith("INSERT")]
    assert len(inserts) == 2
    if is_postgres:
        with psycopg.connect(str(backend.settings.database_url), autocommit=True) as conn:
            conn.execute("DELETE FROM job_errors")
            conn.execute("DELETE FROM error_texts")
            assert not ActionTargets(store).page(TIMEOUT, None, 10)  # the page reads the index
            for statement in inserts:
                conn.execute(statement)
    else:
        lite = sqlite3.connect(backend.settings.sqlite_path)
        lite.create_function("ledger_error_id", 1, error_id, deterministic=True)
        with lite:
            lite.execute("DELETE FROM job_errors")
            lite.execute("DELETE FROM error_texts")
        assert not ActionTargets(store).page(TIMEOUT, None, 10)  # the page reads the index
        with lite:
            for statement in inserts:
                lite.execute(statement)
        lite.close()
    assert ActionTargets(store).page(TIMEOUT, None, 10) == by_scan(store, TIMEOUT, None, 10)
    again = {t.name: sorted(map(str, store.rows(t, LIVE))) for t in (JOB_ERRORS, ERROR_TEXTS)}
    assert again == folded


def test_a_needle_of_10_kb_is_refused_with_a_reason(backend: Backend) -> None:
    with console_api(backend) as api, api.signed_in("staff") as client:
        answer = client.get("/ui/jobs", params={"error_contains": "%_" * 5000})
        assert answer.status_code == 422
        assert "error_contains" in answer.text
        assert "200" in answer.text  # the longest needle
        odd = client.get("/ui/jobs", params={"error_contains": "%' OR 1=1 --"})
        assert odd.status_code == 200
        assert 'data-testid="job-row"' not in odd.text
