"""The views' folds, in memory: each view says what the ledger says."""

from __future__ import annotations

import contextlib
from copy import deepcopy
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.commands import (
    AnyCommand,
    CancelJob,
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    RecordHeartbeat,
    RedriveJob,
    ReleaseJob,
    ReportCancelled,
    RequeueJob,
)
from ledger.errors import LedgerError, NotStale
from ledger.job import Job
from ledger.policies.stale import StaleCandidate, stale_cutoff, stale_decisions
from ledger.tally import TallyCounter
from projections.health_metrics import DAILY, STATUSES, HealthMetricsView
from projections.job_status import JobStatusView
from projections.memory import MemoryView
from projections.model import ViewError
from projections.queue_history import QueueHistoryView
from projections.rate_limits import RateLimitCountersView
from tests.support.projection_events import T0, decoded, logged, memory_ledger, raw

STALE = timedelta(seconds=600)
EPSILON = timedelta(microseconds=1)


def run_commands(commands: list[tuple[str, int, float]], jobs: int = 3) -> Any:
    """Drive a real ledger with a sequence of (action, job index, seconds later)."""
    ledger = memory_ledger()
    now = T0
    ids = [
        ledger.execute(EnqueueJob(customer_id=f"c{n % 2}", queue=f"q{n % 2}", max_attempts=2,
                                  delay_seconds=60 if n == 2 else None, priority=n),
                       now).job_id
        for n in range(jobs)
    ]
    for action, index, later in commands:
        job = ledger.get_job(ids[index % jobs])
        now += timedelta(seconds=later)
        command, now = command_for(action, job, f"w{index % 2}", index, now)
        with contextlib.suppress(LedgerError):
            ledger.execute(command, now)
    return ledger, ids


def command_for(
    action: str, job: Job, worker: str, index: int, now: datetime
) -> tuple[AnyCommand, datetime]:
    """The command ``action`` stands for on ``job``, and the time to run it at."""
    command: AnyCommand
    match action:
        case "claim":
            if job.not_before and now < job.not_before:
                now = job.not_before
            command = ClaimJob(job_id=job.id, worker_id=worker)
        case "heartbeat":
            command = RecordHeartbeat(job_id=job.id, attempt=max(job.attempt, 1),
                                      worker_id=job.worker_id or worker)
        case "late":
            command = CompleteJob(job_id=job.id, attempt=max(job.attempt - 1, 1),
                                  worker_id=worker)
        case "complete":
            command = CompleteJob(job_id=job.id, attempt=max(job.attempt, 1),
                                  worker_id=job.worker_id or worker)
        case "fail":
            command = FailJob(job_id=job.id, attempt=max(job.attempt, 1),
                              worker_id=job.worker_id or worker, error=f"boom {index}")
        case "stale":
            now += STALE
            command = DetectStale(job_id=job.id, attempt=max(job.attempt, 1),
                                  detected_by="monitor")
        case "cancel":
            command = CancelJob(job_id=job.id, actor="cli:ops", reason="why")
        case "cancelled":
            command = ReportCancelled(job_id=job.id, attempt=max(job.attempt, 1),
                                      worker_id=job.worker_id or worker)
        case "release":
            now = max(now, job.not_before or now)
            command = ReleaseJob(job_id=job.id)
        case "requeue":
            command = RequeueJob(job_id=job.id, actor="cli:ops", action_id="a1")
        case _:
            command = RedriveJob(job_id=job.id, actor="operator")
    return command, now


ACTIONS = st.sampled_from(
    ["claim", "heartbeat", "complete", "fail", "stale", "redrive", "late", "claim", "heartbeat",
     "cancel", "cancelled", "release", "requeue"]
)
COMMANDS = st.lists(
    st.tuples(ACTIONS, st.integers(0, 2), st.floats(0.001, 30)), min_size=1, max_size=40
)
LIVES = [  # whole lives random interleavings of three jobs seldom reach: always tried
    [("claim", 0, 1), ("fail", 0, 1), ("claim", 0, 1), ("heartbeat", 0, 2), ("fail", 0, 1),
     ("redrive", 0, 1), ("claim", 0, 1), ("heartbeat", 0, 3)],
    [("claim", 1, 1), ("heartbeat", 1, 2), ("stale", 1, 1), ("claim", 1, 1), ("late", 1, 1),
     ("heartbeat", 1, 4), ("complete", 1, 1), ("claim", 2, 1), ("heartbeat", 2, 5)],
    [("claim", 2, 1), ("stale", 2, 1), ("claim", 2, 1), ("stale", 2, 1), ("redrive", 2, 1),
     ("claim", 2, 1), ("heartbeat", 2, 1), ("claim", 0, 1), ("heartbeat", 0, 1)],
    [("cancel", 0, 1), ("claim", 1, 1), ("cancel", 1, 1), ("heartbeat", 1, 1),
     ("cancelled", 1, 1), ("release", 2, 1), ("claim", 2, 1), ("cancel", 2, 1), ("stale", 2, 1),
     ("late", 2, 1)],
]


def lives(test: Any) -> Any:
    """Always try :data:`LIVES` besides hypothesis's own sequences."""
    for commands in reversed(LIVES):
        test = example(commands=commands)(test)
    return test


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=COMMANDS, page=st.integers(1, 7))
@example(commands=LIVES[0], page=3)
@example(commands=LIVES[1], page=2)
@example(commands=LIVES[2], page=1)
@example(commands=LIVES[3], page=2)
def test_job_status_row_equals_the_job_whatever_happened(
    commands: list[tuple[str, int, float]], page: int
) -> None:
    ledger, ids = run_commands(commands)
    events = decoded(logged(ledger))
    view = MemoryView(JobStatusView())
    for start in range(0, len(events), page):  # any page boundaries give the same rows
        view.feed(events[start:start + page])
    rows = {row["job_id"]: row for row in view.dicts("job_status")}
    assert len(rows) == len(ids)
    for job_id in ids:
        job = ledger.get_job(job_id)
        row = rows[str(job_id)]
        assert row["customer_id"] == job.customer_id
        assert row["queue"] == job.queue
        assert row["max_attempts"] == job.max_attempts
        assert row["status"] == str(job.status)
        assert row["attempt"] == job.attempt
        assert row["attempts_used"] == job.attempts_used
        assert row["worker_id"] == job.worker_id
        assert row["started_at"] == job.claimed_at
        assert row["last_heartbeat_at"] == job.last_heartbeat_at
        assert row["finished_at"] == job.finished_at
        assert row["not_before"] == job.not_before
        assert row["last_error"] == job.last_error
        assert row["heartbeats"] == job.heartbeats
        assert row["refused_reports"] == job.refused_reports
        assert row["version"] == job.version
        assert row["enqueued_at"] == job.enqueued_at
        assert row["updated_at"] == job.modified_on
        assert row["priority"] == job.priority
        assert row["cancel_requested"] == int(job.cancel_requested)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=COMMANDS)
@lives
def test_health_counters_count_jobs_by_their_status(commands: list[tuple[str, int, float]]) -> None:
    ledger, ids = run_commands(commands)
    view = MemoryView(HealthMetricsView())
    view.feed(decoded(logged(ledger)))
    expected: dict[str, dict[str, int]] = {}
    for job_id in ids:
        job = ledger.get_job(job_id)
        counts = expected.setdefault(job.queue, dict.fromkeys(STATUSES, 0))
        counts[str(job.status)] += 1
    got = {q["queue"]: {k: v for k, v in q.items() if k != "queue"}
           for q in view.dicts("health_queues")}
    assert got == expected
    in_progress = {r["job_id"] for r in view.dicts("health_jobs") if r["status"] == "in_progress"}
    assert in_progress == {str(i) for i in ids if ledger.get_job(i).status == "in_progress"}
    rows = {row["job_id"]: row for row in view.dicts("health_jobs")}
    assert len(rows) == len(ids)
    for job_id in ids:
        job, row = ledger.get_job(job_id), rows[str(job_id)]
        assert (row["queue"], row["status"], row["last_heartbeat_at"]) == (
            job.queue, str(job.status), job.last_heartbeat_at
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=COMMANDS)
@lives
def test_health_daily_counts_add_up_to_the_jobs_counters(
    commands: list[tuple[str, int, float]]
) -> None:
    ledger, ids = run_commands(commands)
    view = MemoryView(HealthMetricsView())
    view.feed(decoded(logged(ledger)))
    got: dict[str, dict[str, int]] = {}
    for day in view.dicts("health_daily"):
        totals = got.setdefault(day["queue"], dict.fromkeys(DAILY, 0))
        for counter in DAILY:
            totals[counter] += day[counter]
    expected: dict[str, dict[str, int]] = {}
    for job_id in ids:
        job = ledger.get_job(job_id)
        totals = expected.setdefault(job.queue, dict.fromkeys(DAILY, 0))
        dead = job.status == "dead_lettered"
        for counter, count in (
            ("enqueued", 1), ("completed", int(job.status == "completed")),
            ("failed", job.failures), ("stale", job.stalls), ("redriven", job.redrives),
            ("dead_lettered", job.redrives + dead),  # each redrive answered one dead letter
            ("cancelled", int(job.status == "cancelled")),
        ):
            totals[counter] += count
    assert got == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=COMMANDS)
@lives
def test_the_views_stale_jobs_are_the_jobs_the_model_finds_stale(
    commands: list[tuple[str, int, float]]
) -> None:
    """Health counts (``health_jobs`` before the cutoff) and the monitor picks (the stale
    rule over ``job_status`` rows) exactly the jobs whose own re-check says stale, at
    every instant around each job's threshold."""
    ledger, ids = run_commands(commands)
    events = decoded(logged(ledger))
    health, status = MemoryView(HealthMetricsView()), MemoryView(JobStatusView())
    health.feed(events)
    status.feed(events)
    threshold = ledger.stale_threshold
    jobs = [ledger.get_job(i) for i in ids]
    beats = [job.last_heartbeat_at for job in jobs if job.last_heartbeat_at is not None]
    probes = [T0] + [b + threshold + d for b in beats for d in (timedelta(0), EPSILON)]
    for now in probes:
        expected = {str(job.id) for job in jobs if _model_says_stale(job, now, threshold)}
        cutoff = stale_cutoff(now, threshold)  # what ``health.stale`` asks the index
        counted = {
            r["job_id"] for r in health.dicts("health_jobs")
            if r["status"] == "in_progress" and r["last_heartbeat_at"] < cutoff
        }
        candidates = [
            StaleCandidate(UUID(r["job_id"]), r["attempt"], r["status"], r["worker_id"],
                           r["last_heartbeat_at"])
            for r in status.dicts("job_status") if r["last_heartbeat_at"] is not None
        ]
        picked = {str(d.job_id) for d in stale_decisions(candidates, now, threshold)}
        assert counted == expected
        assert picked == expected


def _model_says_stale(job: Job, now: datetime, threshold: timedelta) -> bool:
    try:
        deepcopy(job).detect_stale(job.attempt, threshold, now, None, "probe")
    except NotStale:
        return False
    return True


def test_queue_history_records_each_queue_action_with_actor_and_evidence() -> None:
    ledger, (job_id, *_) = run_commands(
        [("claim", 0, 1), ("heartbeat", 0, 2), ("stale", 0, 1), ("claim", 0, 1), ("late", 0, 1),
         ("complete", 0, 1)],
        jobs=1,
    )
    view = MemoryView(QueueHistoryView())
    view.feed(decoded(logged(ledger)))
    actions = [(r["action"], r["attempt"], r["actor"]) for r in view.dicts("queue_history")]
    assert actions == [
        ("enqueued", 0, "c0"), ("claimed", 1, "w0"), ("stale_detected", 1, "monitor"),
        ("requeued", 1, "ledger"), ("claimed", 2, "w0"), ("report_refused", 1, "w0"),
        ("completed", 2, "w0"),
    ]
    stale = next(r for r in view.dicts("queue_history") if r["action"] == "stale_detected")
    assert '"threshold_seconds":600.0' in stale["detail"]
    assert '"worker_id":"w0"' in stale["detail"]
    assert all(r["queue"] == "q0" and r["job_id"] == str(job_id)
               for r in view.dicts("queue_history"))


def test_health_daily_counts_by_utc_day_and_workers_by_last_sighting() -> None:
    ledger, _ = run_commands(
        [("claim", 0, 1), ("fail", 0, 1), ("claim", 0, 1), ("complete", 0, 86_400),
         ("claim", 1, 1), ("heartbeat", 1, 5)],
        jobs=2,
    )
    view = MemoryView(HealthMetricsView())
    view.feed(decoded(logged(ledger)))
    daily = {(r["day"], r["queue"]): r for r in view.dicts("health_daily")}
    first, second = date(2026, 3, 2), date(2026, 3, 3)
    assert daily[(first, "q0")]["enqueued"] == 1
    assert daily[(first, "q0")]["failed"] == 1
    assert daily[(second, "q0")]["completed"] == 1
    assert daily[(first, "q1")]["enqueued"] == 1
    workers = {(r["worker_id"], r["queue"]): r["last_seen_at"]
               for r in view.dicts("health_workers")}
    assert set(workers) == {("w0", "q0"), ("w1", "q1")}
    assert workers[("w1", "q1")] > workers[("w0", "q0")]


def test_a_flood_of_limiter_decisions_becomes_one_tally_per_subject_and_minute() -> None:
    counter = TallyCounter(reporter="api-1")
    for second in range(120):
        for _ in range(50):
            at = T0 + timedelta(seconds=second)
            counter.count("acme", "public", admitted=second % 2 == 0, at=at)
    counter.count("globex", "public", admitted=True, at=T0)
    assert counter.pending == 3
    closed = counter.flush(T0 + timedelta(seconds=60))  # the first minute is over
    assert [(t.subject, t.admitted, t.refused) for t in closed] == [
        ("acme", 1500, 1500), ("globex", 1, 0)
    ]
    rest = counter.flush(T0 + timedelta(seconds=61), everything=True)
    assert [(t.subject, t.window_start, t.admitted + t.refused) for t in rest] == [
        ("acme", T0 + timedelta(seconds=60), 3000)
    ]
    assert counter.pending == 0
    assert counter.flush(T0 + timedelta(hours=1), everything=True) == []


def test_tallies_whose_save_failed_come_back_with_the_same_ids() -> None:
    counter = TallyCounter(reporter="api-1")
    counter.count("acme", "auth", admitted=False, at=T0)
    first = counter.flush(T0 + timedelta(minutes=5))
    counter.restore(first)
    again = counter.flush(T0 + timedelta(minutes=6))
    assert [t.id for t in again] == [t.id for t in first]
    assert [(t.admitted, t.refused) for t in again] == [(0, 1)]


def test_rate_limit_counters_add_tallies_and_enqueues_per_subject_and_minute() -> None:
    ledger = memory_ledger()
    counter = TallyCounter(reporter="api-1")
    for n in range(3):
        ledger.execute(EnqueueJob(customer_id="acme"), T0 + timedelta(seconds=n))
        counter.count("acme", "public", admitted=True, at=T0 + timedelta(seconds=n))
    for n in range(500):
        counter.count("acme", "public", admitted=False, at=T0 + timedelta(seconds=30 + n / 100))
    ledger.save(*counter.flush(T0 + timedelta(minutes=1)))
    other = TallyCounter(reporter="api-2")  # a second API process counts the same minute
    other.count("acme", "public", admitted=False, at=T0)
    ledger.save(*other.flush(T0 + timedelta(minutes=2)))
    view = MemoryView(RateLimitCountersView())
    view.feed(decoded(logged(ledger)))
    assert view.dicts("rate_limit_counters") == [
        {"subject": "acme", "window_start": T0, "enqueued": 3, "admitted": 3, "refused": 501}
    ]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"admitted": -1, "refused": 0, "window_seconds": 60}, "negative tally"),
        ({"admitted": 1, "refused": 0, "window_seconds": 900}, "tally window of 900s"),
    ],
)
def test_a_bad_tally_stops_the_rate_limit_view(state: dict[str, Any], reason: str) -> None:
    from ledger.tally import RequestTally

    row = raw(1, "6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11", 1, get_topic(RequestTally.Recorded),
              subject="acme", preset="public", reporter="r",
              window_start={"_type_": "datetime_iso", "_data_": T0.isoformat()}, **state)
    view = MemoryView(RateLimitCountersView())
    with pytest.raises(ViewError, match=reason) as caught:
        view.feed(decoded([row]))
    assert caught.value.position == 1
    assert caught.value.view == "rate_limits"


@pytest.mark.parametrize("view", [JobStatusView(), QueueHistoryView(), HealthMetricsView()],
                         ids=lambda v: v.name)
def test_an_event_for_a_job_the_view_never_saw_stops_it_naming_the_event(view: Any) -> None:
    job = str(UUID(int=7))
    row = raw(42, job, 2, get_topic(Job.Claimed), attempt=1, worker_id="w", worker_time=None)
    with pytest.raises(ViewError) as caught:
        MemoryView(view).feed(decoded([row]))
    message = str(caught.value)
    assert f"view '{view.name}' stopped at event 42" in message
    assert "ledger.job:Job.Claimed" in message
    assert job in message
