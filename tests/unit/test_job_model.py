"""The job aggregate's decisions, without any store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ledger.errors import (
    AlreadyAlerted,
    AttemptSuperseded,
    IllegalTransition,
    JobNotDue,
    LedgerError,
    NotStale,
    UnknownAttempt,
)
from ledger.job import Job
from ledger.policies.retry import RetryPolicy
from ledger.status import Status

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RETRY = timedelta(seconds=10)


def new_job(max_attempts: int = 3) -> Job:
    return Job.enqueue(
        job_id=uuid4(), customer_id="acme", queue="default", payload={"n": 1},
        max_attempts=max_attempts, idempotency_key=None, now=T0,
    )


def names(job: Job) -> list[str]:
    return [type(e).__name__ for e in job.collect_events()]


def test_enqueue_is_pending_with_no_attempt() -> None:
    job = new_job()
    assert (job.status, job.attempt, job.attempts_used) == (Status.PENDING, 0, 0)
    assert job.enqueued_at == T0
    assert names(job) == ["Enqueued"]


def test_claim_opens_the_next_attempt_and_records_both_clocks() -> None:
    job = new_job()
    worker_clock = T0 - timedelta(seconds=3)
    assert job.claim("w1", T0, worker_time=worker_clock) == 1
    (claimed,) = job.collect_events()[1:]
    assert isinstance(claimed, Job.Claimed)
    assert claimed.timestamp == T0
    assert claimed.worker_time == worker_clock
    assert (job.status, job.worker_id, job.attempt) == (Status.IN_PROGRESS, "w1", 1)


def test_heartbeat_moves_last_heartbeat_to_ledger_time() -> None:
    job = new_job()
    job.claim("w1", T0)
    job.heartbeat(1, "w1", T0 + timedelta(seconds=5), worker_time=T0)
    assert job.last_heartbeat_at == T0 + timedelta(seconds=5)
    assert job.heartbeats == 1


@pytest.mark.parametrize(
    ("report", "attempt", "worker", "error"),
    [
        ("heartbeat", 2, "w1", UnknownAttempt),
        ("heartbeat", 0, "w1", UnknownAttempt),
        ("heartbeat", 1, "w2", AttemptSuperseded),
        ("complete", 2, "w1", UnknownAttempt),
        ("complete", 1, "intruder", AttemptSuperseded),
        ("fail", 3, "w1", UnknownAttempt),
    ],
)
def test_reports_must_name_the_current_attempt_of_its_worker(
    report: str, attempt: int, worker: str, error: type[LedgerError]
) -> None:
    job = new_job()
    job.claim("w1", T0)
    job.collect_events()
    version = job.version
    decisions = {
        "heartbeat": lambda: job.heartbeat(attempt, worker, T0),
        "complete": lambda: job.complete(attempt, worker, None, T0),
        "fail": lambda: job.fail(attempt, worker, "boom", T0, RETRY),
    }
    with pytest.raises(error):
        decisions[report]()
    assert job.version == version
    assert job.collect_events() == []


def test_report_from_a_superseded_attempt_is_refused_after_a_stale_requeue() -> None:
    job = new_job()
    job.claim("w1", T0)
    job.detect_stale(1, timedelta(minutes=1), T0 + timedelta(minutes=2), RETRY, "monitor")
    job.claim("w2", T0 + timedelta(minutes=3))
    with pytest.raises(AttemptSuperseded) as caught:
        job.complete(1, "w1", None, T0 + timedelta(minutes=4))
    assert (caught.value.attempt, caught.value.current_attempt) == (1, 2)
    job.refuse_report(caught.value, "w1", "complete", T0 + timedelta(minutes=4))
    refusal = job.collect_events()[-1]
    assert isinstance(refusal, Job.ReportRefused)
    assert (refusal.reason, refusal.current_attempt) == ("superseded", 2)
    assert job.status == Status.IN_PROGRESS  # the refusal changed nothing


def test_completion_is_terminal() -> None:
    job = new_job()
    job.claim("w1", T0)
    job.complete(1, "w1", {"ok": True}, T0)
    assert job.status == Status.COMPLETED
    assert job.result == {"ok": True}
    with pytest.raises(IllegalTransition):
        job.claim("w2", T0)
    with pytest.raises(AttemptSuperseded):
        job.heartbeat(1, "w1", T0)
    with pytest.raises(IllegalTransition):
        job.redrive("ops", T0)


def test_failure_is_retried_after_the_delay_then_dead_lettered() -> None:
    job = new_job(max_attempts=2)
    job.claim("w1", T0)
    job.fail(1, "w1", "boom", T0, RETRY)
    assert names(job)[-2:] == ["Failed", "Requeued"]
    # ADR 100: a retry's backoff is scheduled until due; a due claim releases it first
    assert (job.status, job.not_before, job.last_error) == (Status.SCHEDULED, T0 + RETRY, "boom")
    with pytest.raises(JobNotDue):
        job.claim("w1", T0 + timedelta(seconds=5))
    job.claim("w1", T0 + RETRY)
    assert names(job)[-2:] == ["Released", "Claimed"]
    job.fail(2, "w1", "boom again", T0 + RETRY, RETRY)
    events = job.collect_events()
    dead = events[-1]
    assert isinstance(dead, Job.DeadLettered)
    assert (dead.attempts_used, dead.last_error) == (2, "boom again")
    assert job.status == Status.DEAD_LETTERED


def test_a_retry_policy_answering_none_dead_letters_at_once() -> None:
    job = new_job(max_attempts=5)
    job.claim("w1", T0)
    job.fail(1, "w1", "permanent", T0, None)
    assert job.status == Status.DEAD_LETTERED


def test_stale_detection_rechecks_the_job_itself() -> None:
    job = new_job()
    job.claim("w1", T0)
    job.heartbeat(1, "w1", T0 + timedelta(seconds=50))
    threshold = timedelta(seconds=60)
    with pytest.raises(NotStale):  # the view said stale, but a heartbeat arrived since
        job.detect_stale(1, threshold, T0 + timedelta(seconds=100), RETRY, "m")
    with pytest.raises(NotStale):  # wrong attempt
        job.detect_stale(2, threshold, T0 + timedelta(seconds=200), RETRY, "m")
    job.detect_stale(1, threshold, T0 + timedelta(seconds=111), RETRY, "m")
    stale, requeued = job.collect_events()[-2:]
    assert isinstance(stale, Job.StaleDetected)
    assert stale.last_heartbeat_at == T0 + timedelta(seconds=50)
    assert stale.threshold_seconds == 60
    assert stale.attempt == 1
    assert isinstance(requeued, Job.Requeued)
    assert requeued.reason == "stale"
    with pytest.raises(NotStale):  # the same episode is not requeued twice
        job.detect_stale(1, threshold, T0 + timedelta(seconds=300), RETRY, "m2")


def test_stall_counts_as_an_attempt() -> None:
    job = new_job(max_attempts=1)
    job.claim("w1", T0)
    job.detect_stale(1, timedelta(seconds=1), T0 + timedelta(seconds=5), RETRY, "m")
    assert job.status == Status.DEAD_LETTERED


def test_redrive_gives_a_fresh_budget_and_links_the_dead_letter() -> None:
    job = new_job(max_attempts=1)
    job.claim("w1", T0)
    job.fail(1, "w1", "boom", T0, RETRY)
    dead_letter_version = job.version
    job.redrive("ops", T0)
    redriven = job.collect_events()[-1]
    assert isinstance(redriven, Job.Redriven)
    assert redriven.dead_letter_version == dead_letter_version
    assert (job.status, job.attempts_used, job.attempt) == (Status.PENDING, 0, 1)
    assert job.claim("w2", T0) == 2
    with pytest.raises(IllegalTransition):  # redrive only answers a dead letter
        job.redrive("ops", T0)


@pytest.mark.parametrize(
    ("used", "maximum", "draw", "expected"),
    [
        (1, 3, 0.0, 5.0),
        (1, 3, 0.999999, 10.0),
        (2, 3, 0.0, 10.0),
        (3, 3, 0.5, None),
        (1, 1, 0.5, None),
        (12, 20, 1.0, 3600.0),
    ],
)
def test_retry_policy_backs_off_exponentially_with_jitter_and_a_cap(
    used: int, maximum: int, draw: float, expected: float | None
) -> None:
    delay = RetryPolicy(10, 3600).delay(used, maximum, draw)
    if expected is None:
        assert delay is None
    else:
        assert delay is not None
        assert delay.total_seconds() == pytest.approx(expected, rel=1e-5)


def test_a_message_in_the_queues_dead_letter_queue_dead_letters_the_job() -> None:
    job = new_job()
    job.claim("w1", T0)
    job.dead_letter_from_queue("msg-7", 5, T0)
    dead = job.collect_events()[-1]
    assert isinstance(dead, Job.DeadLettered)
    assert (dead.source, dead.message_id, dead.attempts_used) == ("sqs_dlq", "msg-7", 1)
    assert job.status == Status.DEAD_LETTERED
    with pytest.raises(IllegalTransition):  # already terminal: nothing more to record
        job.dead_letter_from_queue("msg-7", 6, T0)


def test_an_old_copy_of_the_message_in_the_dead_letter_queue_is_refused() -> None:
    """The job was requeued and dispatched again after the message was sent (the message
    names fewer claims than the job's current dispatch): the job, pending or running on
    a newer message, is not dead-lettered. The message a running attempt was claimed from
    is current (its workers crashing is what SQS gives up on)."""
    job = new_job(max_attempts=3)
    job.claim("w1", T0)  # claimed from the message sent after 0 claims
    job.detect_stale(1, timedelta(seconds=1), T0 + timedelta(seconds=5), timedelta(0), "m")
    job.claim("w2", T0 + timedelta(seconds=6))  # from the message sent after 1 claim
    job.collect_events()
    with pytest.raises(IllegalTransition, match="old message"):
        job.dead_letter_from_queue("msg-1", 3, T0, message_attempt=0)
    assert job.collect_events() == []
    job.dead_letter_from_queue("msg-2", 3, T0, message_attempt=1)  # running attempt 2's
    (dead,) = job.collect_events()
    assert isinstance(dead, Job.DeadLettered)
    assert dead.message_id == "msg-2"


def test_a_pending_job_refuses_the_message_of_an_attempt_before_its_requeue() -> None:
    job = new_job(max_attempts=3)
    job.claim("w1", T0)
    job.detect_stale(1, timedelta(seconds=1), T0 + timedelta(seconds=5), timedelta(0), "m")
    job.collect_events()
    assert job.status == Status.PENDING
    with pytest.raises(IllegalTransition, match="old message"):
        job.dead_letter_from_queue("msg-1", 3, T0, message_attempt=0)
    job.dead_letter_from_queue("msg-2", 3, T0, message_attempt=1)  # its current message
    (dead,) = job.collect_events()
    assert isinstance(dead, Job.DeadLettered)


def test_each_dead_letter_is_alerted_once() -> None:
    job = new_job(max_attempts=1)
    job.claim("w1", T0)
    job.fail(1, "w1", "boom", T0, RETRY)
    first = job.version
    with pytest.raises(IllegalTransition):
        job.record_alert(first + 5, "slack", T0, delivery_id="d1")
    job.record_alert(first, "slack", T0, delivery_id="d1")
    with pytest.raises(AlreadyAlerted):
        job.record_alert(first, "slack", T0, delivery_id="d2")
    job.redrive("ops", T0)
    job.claim("w1", T0)
    job.fail(2, "w1", "boom", T0, RETRY)
    assert job.dead_letter_version is not None
    assert job.dead_letter_version > first
    job.record_alert(job.dead_letter_version, "slack", T0, failure="HTTP 404: no_service")
    events = job.collect_events()
    assert [type(e).__name__ for e in events].count("AlertSent") == 1
    assert isinstance(events[-1], Job.AlertFailed)
    assert job.alert_failed
