"""Random command sequences against the job model never break its invariants.

Invariants: at most one current attempt (and only while in progress); nothing but a
redrive (or a recorded refusal) after a terminal state; attempts used never exceed
max_attempts; a refused command appends nothing; and replaying the events rebuilds the
same job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.errors import LedgerError
from ledger.job import Job
from ledger.status import Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
THRESHOLD = timedelta(seconds=30)
WORKERS = st.one_of(st.just("current"), st.sampled_from(["w1", "w2", "w3"]))
"""``current`` stands for the worker of the latest attempt, so reports often fit."""
ATTEMPTS = st.one_of(st.just(0), st.integers(min_value=1, max_value=6))
"""0 stands for the latest attempt."""


class JobMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.max_attempts = 3
        self.job = Job.enqueue(
            job_id=uuid4(),
            customer_id="c",
            queue="q",
            payload=None,
            max_attempts=self.max_attempts,
            idempotency_key=None,
            now=T0,
        )
        self.events = list(self.job.collect_events())
        self.terminal_seen = False

    def attempt(self, choice: int) -> int:
        return choice if choice else self.job.attempt

    def worker(self, choice: str) -> str:
        return (self.job.worker_id or "w1") if choice == "current" else choice

    def run(self, action: str, decide: object) -> None:
        before = (self.job.version, self.job.status, self.job.attempt)
        terminal = self.job.status.is_terminal
        try:
            assert callable(decide)
            decide()
        except LedgerError:
            assert (self.job.version, self.job.status, self.job.attempt) == before
            assert self.job.collect_events() == []
            return
        new = self.job.collect_events()
        assert new, f"{action} succeeded without an event"
        if terminal:
            assert all(isinstance(e, Job.Redriven) for e in new), (action, new)
        self.events.extend(new)

    @rule(seconds=st.integers(min_value=0, max_value=100))
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(worker=WORKERS)
    def claim(self, worker: str) -> None:
        self.run("claim", lambda: self.job.claim(self.worker(worker), self.now))

    @rule(worker=WORKERS, choice=ATTEMPTS)
    def heartbeat(self, worker: str, choice: int) -> None:
        self.run(
            "heartbeat",
            lambda: self.job.heartbeat(self.attempt(choice), self.worker(worker), self.now),
        )

    @rule(worker=WORKERS, choice=ATTEMPTS)
    def complete(self, worker: str, choice: int) -> None:
        self.run(
            "complete",
            lambda: self.job.complete(self.attempt(choice), self.worker(worker), None, self.now),
        )

    @rule(worker=WORKERS, choice=ATTEMPTS, retry=st.booleans())
    def fail(self, worker: str, choice: int, retry: bool) -> None:
        delay = timedelta(seconds=5) if retry else None
        self.run(
            "fail",
            lambda: self.job.fail(self.attempt(choice), self.worker(worker), "e", self.now, delay),
        )

    @rule(choice=ATTEMPTS)
    def detect_stale(self, choice: int) -> None:
        self.run(
            "stale",
            lambda: self.job.detect_stale(
                self.attempt(choice), THRESHOLD, self.now, timedelta(0), "m"
            ),
        )

    @precondition(lambda self: self.job.status == Status.DEAD_LETTERED)
    @rule()
    def redrive(self) -> None:
        self.run("redrive", lambda: self.job.redrive("ops", self.now))

    @invariant()
    def attempts_within_budget(self) -> None:
        assert 0 <= self.job.attempts_used <= self.max_attempts

    @invariant()
    def one_current_attempt_only_while_in_progress(self) -> None:
        current = self.job.attempt
        open_attempts = [
            k for k in range(1, current + 1) if self._accepts(k, self.job.worker_id or "")
        ]
        expected = [current] if self.job.status == Status.IN_PROGRESS else []
        assert open_attempts == expected
        claims = [e.attempt for e in self.events if isinstance(e, Job.Claimed)]
        assert claims == list(range(1, len(claims) + 1))  # each claim opens n + 1

    def _accepts(self, attempt: int, worker: str) -> bool:
        try:
            self.job.check_report(attempt, worker, "heartbeat")
        except LedgerError:
            return False
        return True

    @invariant()
    def replay_gives_the_same_job(self) -> None:
        replayed: Job | None = None
        for event in self.events:
            replayed = event.mutate(replayed)
        assert replayed is not None
        assert replayed.__dict__ == self.job.__dict__


JobMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestJobStateMachine = JobMachine.TestCase
