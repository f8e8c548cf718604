"""The pure audit checker on hand-built histories: each invariant broken once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.audit import Limits, Step, audit_history

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB = "00000000-0000-0000-0000-000000000001"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def limits(now: float = 3600, dispatched: int | None = 10_000) -> Limits:
    return Limits(now=at(now), alert_grace=timedelta(seconds=60),
                  dispatched_upto=dispatched, in_flight=timedelta(seconds=5))


def history(*events: tuple[str, dict[str, object]]) -> list[Step]:
    return [
        Step(position=i + 1, version=i + 1, type=kind, at=at(i), **fields)  # type: ignore[arg-type]
        for i, (kind, fields) in enumerate(events)
    ]


def invariants(steps: list[Step], lim: Limits | None = None) -> list[str]:
    violations, _ = audit_history(JOB, steps, lim or limits())
    return [v.invariant for v in violations]


ENQ: tuple[str, dict[str, object]] = ("Enqueued", {})


def claim(n: int, worker: str = "w1") -> tuple[str, dict[str, object]]:
    return ("Claimed", {"attempt": n, "worker_id": worker})


def report(kind: str, n: int, worker: str = "w1") -> tuple[str, dict[str, object]]:
    return (kind, {"attempt": n, "worker_id": worker})


def test_a_clean_life_with_a_stale_episode_a_dead_letter_and_a_redrive() -> None:
    steps = history(
        ENQ, claim(1), report("HeartbeatRecorded", 1), report("StaleDetected", 1),
        ("Requeued", {"attempt": 1}), claim(2, "w2"), report("Failed", 2, "w2"),
        ("DeadLettered", {"attempt": 2}), ("AlertSent", {"dead_letter_version": 8}),
        ("Redriven", {"dead_letter_version": 8}),
        claim(3, "w3"), ("ReportRefused", {"attempt": 1, "worker_id": "w1"}),
        report("Completed", 3, "w3"),
    )
    assert invariants(steps) == []


def test_a_job_still_in_progress_or_pending_is_fine() -> None:
    assert invariants(history(ENQ)) == []
    assert invariants(history(ENQ, claim(1), report("HeartbeatRecorded", 1))) == []


def test_lifecycle_history_must_start_with_enqueued() -> None:
    assert invariants(history(claim(1))) == ["lifecycle"]


def test_lifecycle_claim_of_a_completed_job() -> None:
    steps = history(ENQ, claim(1), report("Completed", 1), claim(2))
    assert invariants(steps) == ["lifecycle"]


def test_a_claim_that_never_ended() -> None:
    assert invariants(history(ENQ, claim(1), claim(2, "w2"))) == ["claim_not_ended"]
    assert invariants(history(ENQ, claim(1), ("Requeued", {"attempt": 1}))) == [
        "claim_not_ended"
    ]


def test_a_report_applied_to_a_superseded_attempt() -> None:
    steps = history(ENQ, claim(1), report("StaleDetected", 1), ("Requeued", {"attempt": 1}),
                    claim(2, "w2"), report("Completed", 1, "w1"))
    assert invariants(steps) == ["superseded_attempt"]


def test_a_heartbeat_from_another_worker_on_the_current_attempt() -> None:
    steps = history(ENQ, claim(1), report("HeartbeatRecorded", 1, "intruder"))
    assert invariants(steps) == ["superseded_attempt"]


def test_a_dead_letter_without_an_alert_is_pending_then_missing() -> None:
    steps = history(ENQ, claim(1), report("Failed", 1), ("DeadLettered", {"attempt": 1}))
    violations, pending = audit_history(JOB, steps, limits(now=30))
    assert violations == []
    assert [p.kind for p in pending] == ["alert"]
    assert invariants(steps, limits(now=3600)) == ["alert_missing"]


def test_two_alerts_for_one_dead_letter() -> None:
    steps = history(ENQ, claim(1), report("Failed", 1), ("DeadLettered", {"attempt": 1}),
                    ("AlertSent", {"dead_letter_version": 4}),
                    ("AlertFailed", {"dead_letter_version": 4}))
    assert invariants(steps) == ["alert_duplicate"]


def test_an_alert_for_no_dead_letter() -> None:
    assert invariants(history(ENQ, ("AlertSent", {"dead_letter_version": 1}))) == [
        "alert_unknown"
    ]


def test_a_recorded_permanent_alert_failure_counts_as_the_alert() -> None:
    steps = history(ENQ, ("DeadLettered", {"attempt": 0}),
                    ("AlertFailed", {"dead_letter_version": 2}))
    assert invariants(steps) == []


def test_a_requeue_the_dispatcher_never_sent() -> None:
    steps = history(ENQ, claim(1), report("Failed", 1), ("Requeued", {"attempt": 1}))
    # The dispatcher is past the enqueue (1) but not the requeue (4).
    assert invariants(steps, limits(dispatched=3)) == ["not_dispatched"]
    violations, pending = audit_history(JOB, steps, limits(now=5, dispatched=3))
    assert violations == []
    assert [p.kind for p in pending] == ["dispatch"]
    assert invariants(steps, limits(dispatched=None)) == []
