"""A batch of new jobs appended as rows (``ledger/new_jobs.py``, issue 19, ADR 185): the
rows decode through the normal mapper to the event ``Job.enqueue`` makes, the answers and
the cached jobs are the general path's, no job object is built per job, one append per
batch, and every case that needs a decision still takes the general path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from ledger.application import JobLedger
from ledger.command_checks import validate_all, validated_together
from ledger.commands import CancelJob, EnqueueJob, Outcome, validated
from ledger.errors import IdempotencyConflict, InvalidCommand, InvalidText
from ledger.job import Job
from ledger.new_jobs import (
    _PARTS,
    PARTS_MOST,
    NewJob,
    kept_parts,
    message_parts,
    new_job_outbox,
    new_job_rows,
    uuid4s,
)
from ledger.outbox import outbox_batch, outbox_columns
from ledger.ports.transport import JobMessage, encode_message

NOW = datetime(2026, 12, 5, 4, 5, 6, 789012, tzinfo=UTC)
PAYLOADS: list[Any] = [
    None, 0, -1, 2**80, 1.5, 1e16, 1e-7, True, "", "é\u2028\x7f\"\\", "\t\n\r", [], {},
    {"a": [1, {"b": None}], "c": "\U0001f600"},
]  # fmt: skip
TRACE = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


def memory_ledger(**kw: Any) -> JobLedger:
    return JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, **kw)


def commands() -> list[EnqueueJob]:
    made = [EnqueueJob(customer_id="acme", queue="emails", payload=p) for p in PAYLOADS]
    made += [
        EnqueueJob(customer_id="acme", payload={"k": 1}, idempotency_key="invoice-42",
                   priority=-5, max_attempts=7, traceparent=TRACE),
        EnqueueJob(customer_id="other", payload=[1], run_at=NOW + timedelta(hours=2)),
        EnqueueJob(customer_id="acme", payload=2, delay_seconds=30.5, priority=9),
        EnqueueJob(customer_id="acme", payload=3, run_at=NOW - timedelta(seconds=1)),
    ]  # fmt: skip
    return [validated(c) for c in made]


def stored_of(ledger: JobLedger, job_id: UUID) -> list[StoredEvent]:
    return list(ledger.events.recorder.select_events(job_id))


def test_the_rows_decode_to_the_event_job_enqueue_makes() -> None:
    ledger = memory_ledger()
    batch = commands()
    ids = [uuid.uuid4() for _ in batch]
    rows = new_job_rows(batch, ids, NOW)
    old = memory_ledger()
    for command, job_id, state in zip(batch, ids, rows.rows[3], strict=True):
        job = NewJob(command, job_id, NOW, rows.jobs[ids.index(job_id)].run_at)
        expected = Job.enqueue(
            job_id=job_id, customer_id=command.customer_id, queue=command.queue,
            payload=command.payload, max_attempts=command.max_attempts,
            idempotency_key=command.idempotency_key, now=NOW, priority=command.priority,
            run_at=job.run_at, traceparent=command.traceparent,
        ).pending_events[0]
        generic = old.mapper.to_stored_event(expected)
        new = StoredEvent(originator_id=job_id, originator_version=1,
                          topic=rows.rows[2][0], state=state)  # fmt: skip
        assert new.topic == generic.topic
        assert vars(ledger.mapper.to_domain_event(new)) == vars(expected)
        if not isinstance(command.payload, float):  # 1e16: msgspec writes 1e16, json 1e+16
            assert state == generic.state


def test_a_batch_builds_no_job_and_appends_once(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = memory_ledger()
    built: list[Job] = []
    enqueue = Job.enqueue.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Job], /, **kw: Any) -> Job:
        job: Job = enqueue(cls, **kw)
        built.append(job)
        return job

    monkeypatch.setattr(Job, "enqueue", classmethod(counted))
    appends: list[int] = []
    insert = ledger.events.recorder.insert_events

    def counted_insert(events: list[StoredEvent], **kw: Any) -> Any:
        appends.append(len(events))
        return insert(events, **kw)

    monkeypatch.setattr(ledger.events.recorder, "insert_events", counted_insert)
    batch = [EnqueueJob(customer_id="acme", payload={"n": n}) for n in range(100)]
    results = ledger.execute_batch(batch, NOW)
    assert (built, appends, ledger._new_jobs.appends) == ([], [100], 1)
    first = results[0]
    assert isinstance(first, Outcome)
    assert first == Outcome(job_id=first.job_id, status="pending", attempt=0, version=1,
                            created=True)  # fmt: skip
    job = ledger._jobs.held(first.job_id)  # built when asked for, as the general path's
    assert len(built) == 1
    assert job is not None
    assert not job.pending_events
    stored = ledger.get_job(first.job_id)
    assert (job.version, vars(job)) == (stored.version, vars(stored))


def test_the_answers_are_the_general_paths() -> None:
    fast, general = memory_ledger(), memory_ledger()
    general._new_jobs._mapper = None  # no direct encoding: the general path
    for ledger in (fast, general):
        first = ledger.execute_batch(commands(), NOW)
        again = ledger.execute_batch(commands()[-4:], NOW)
        ledger.forget()
        after_forget = ledger.execute_batch(commands()[-4:-3], NOW)
        ledger.results = [first, again, after_forget]  # type: ignore[attr-defined]
    strip = [[(r.status, r.attempt, r.version, r.created, r.traceparent)
              if isinstance(r, Outcome) else type(r) for r in rs]
             for rs in fast.results]  # type: ignore[attr-defined]  # fmt: skip
    assert strip == [[(r.status, r.attempt, r.version, r.created, r.traceparent)
                      if isinstance(r, Outcome) else type(r) for r in rs]
                     for rs in general.results]  # type: ignore[attr-defined]  # fmt: skip
    assert (fast._new_jobs.appends, general._new_jobs.appends) == (1, 0)
    assert [r.status for r in fast.results[0][-3:]] == ["scheduled", "scheduled", "pending"]  # type: ignore[attr-defined]


def test_keys_the_general_path_decides() -> None:
    ledger = memory_ledger()
    key = EnqueueJob(customer_id="acme", payload=1, idempotency_key="k")
    (made,) = ledger.execute_batch([key], NOW)
    assert isinstance(made, Outcome)
    assert made.created
    twice = ledger.execute_batch([key, key], NOW)  # held, and twice in one batch
    assert [r.created for r in twice if isinstance(r, Outcome)] == [False, False]
    ledger.forget()  # not held: guessed new, the append conflicts, the next round reads
    (again,) = ledger.execute_batch([key], NOW)
    assert isinstance(again, Outcome)
    assert (again.job_id, again.created) == (made.job_id, False)
    changed = EnqueueJob(customer_id="acme", payload=2, idempotency_key="k")
    ledger.forget()
    assert isinstance(ledger.execute_batch([changed], NOW)[0], IdempotencyConflict)
    mixed = ledger.execute_batch([key, CancelJob(job_id=made.job_id, actor="cli:me")], NOW)
    assert isinstance(mixed[0], Outcome)
    assert not mixed[0].created
    assert ledger._new_jobs.appends == 1


def test_refused_commands_keep_their_errors() -> None:
    ledger = memory_ledger()
    batch = [EnqueueJob(customer_id="acme", payload="ok"),
             EnqueueJob(customer_id="acme", payload="\x01")]  # fmt: skip
    results = ledger.execute_batch(batch, NOW)
    assert isinstance(results[0], Outcome)
    assert isinstance(results[1], InvalidText)
    far = EnqueueJob(customer_id="acme", payload=1, run_at=NOW + timedelta(days=4000))
    with pytest.raises(InvalidCommand, match="days ahead"):  # as the general path raises it
        ledger.execute_batch([batch[0], far], NOW)
    assert ledger._new_jobs.appends == 1


def test_the_outbox_rows_are_outbox_batchs() -> None:
    batch = commands()
    ids = [uuid.uuid4() for _ in batch]
    rows = new_job_rows(batch, ids, NOW)
    message_ids = iter([uuid.uuid4() for _ in batch] * 2)
    paused = {"emails": False, "default": False}
    fast = new_job_outbox(rows.jobs, queue="local", now=NOW, paused=paused.__getitem__,
                          new_id=lambda: next(message_ids))  # fmt: skip
    jobs = [new.build() for new in rows.jobs]
    events = []
    for job in jobs:  # as the general path has them: pending
        fresh = Job.enqueue(job_id=job.id, customer_id=job.customer_id, queue=job.queue,
                            payload=job.payload, max_attempts=job.max_attempts,
                            idempotency_key=job.idempotency_key, now=NOW,
                            priority=job.priority, run_at=job.not_before,
                            traceparent=job.traceparent)  # fmt: skip
        events.append(fresh.pending_events[0])
    general = outbox_batch(events, {j.id: j for j in jobs}, queue="local", now=NOW,
                           paused=paused.__getitem__, new_id=lambda: next(message_ids))  # fmt: skip
    assert fast is not None
    assert general is not None
    assert fast.indexes == general.indexes
    assert len(fast.indexes) == len(batch) - 2
    ours, theirs = outbox_columns(fast), outbox_columns(general)
    assert len({str(m) for m in ours[0]}) == len(theirs[0])  # a new message id each
    assert [str(j) for j in ours[1]] == theirs[1]
    assert ours[2:] == theirs[2:]
    paused["emails"] = True
    held = new_job_outbox(rows.jobs, queue="local", now=NOW, paused=paused.__getitem__,
                          new_id=uuid.uuid4)  # fmt: skip
    assert held is not None
    assert len(held.indexes) == len(outbox_columns(held)[0]) == 2


def test_uuid4s_are_version_4_uuids() -> None:
    ids = uuid4s(1000)
    assert len(set(ids)) == 1000
    for made in ids:
        assert (made.version, made.variant) == (4, uuid.RFC_4122)
        assert uuid.UUID(str(made)) == made
        assert hash(made) == hash(uuid.UUID(str(made)))


def test_commands_validated_together_are_validateds() -> None:
    batch = commands()
    assert validated_together(batch) == [validated(c) for c in batch]
    assert validate_all(batch) == [validated(c) for c in batch]
    refused = [*batch, EnqueueJob(customer_id="acme\x02")]
    assert validated_together(refused) is None
    assert isinstance(validate_all(refused)[-1], InvalidText)
    assert validated_together([*batch, CancelJob(job_id=uuid.uuid4(), actor="x")]) is None


@pytest.mark.parametrize("customer", ["acme", str(UUID(int=0)), "é\u2028\"\\"])
def test_message_bodies_from_parts_are_encode_messages(customer: str) -> None:
    job_id = uuid.uuid4()
    new = NewJob(EnqueueJob(customer_id=customer, queue="q", priority=-3), job_id, NOW, None)
    rows = new_job_outbox([new], queue="local", now=NOW, paused=lambda _: False,
                          new_id=uuid.uuid4)  # fmt: skip
    assert rows is not None
    assert outbox_columns(rows)[3][0] == encode_message(JobMessage(
        job_id=job_id, attempt=0, customer_id=customer, queue="q",
        dedup_key=f"{job_id}:v1", priority=-3,
    ))


def test_message_parts_are_kept_per_shape_and_bounded() -> None:
    first = kept_parts(("acme", "q", 1))
    assert kept_parts(("acme", "q", 1)) is first  # made once, not per batch
    for n in range(PARTS_MOST + 5):
        assert kept_parts((f"c{n}", "q", 0)) == message_parts(f"c{n}", "q", 0)
    assert len(_PARTS) <= PARTS_MOST
