"""The ledger's invariants, checked on one job's history at a time. Pure: no I/O, no clock.

The audit (``ledger audit``, :mod:`adapters.service.audit`) reads the log in pages and feeds each
job's events, in order, to a :class:`JobAudit`; :meth:`JobAudit.finish` then says what is
wrong with the job (:class:`Violation`) and what is merely not done yet (:class:`Pending`:
an alert still inside its grouping grace, a message the dispatcher is sending now).

Invariants (guarantees 1, 2, 4 and 6 of the specification):

- ``lifecycle``: the history starts with ``Enqueued`` and every transition is one the job
  allows (claim only when pending, redrive only when dead-lettered, ...), so the job is
  always pending, in progress, completed or dead-lettered;
- ``claim_not_ended``: every claim ends in a report (completed / failed), a stale
  detection or a dead letter before anything else happens to the job, or is still current;
- ``superseded_attempt``: heartbeats, completions, failures and stale detections apply
  only to the attempt that is current and in progress (and only from its worker);
- ``alert_missing`` / ``alert_duplicate`` / ``alert_unknown``: every dead letter has
  exactly one recorded alert (``AlertSent`` or ``AlertFailed``) once its grace has passed;
- ``not_dispatched``: every ``Enqueued``, ``Requeued``, ``Redriven`` and ``Released``
  event is behind the dispatcher's tracked position (sent to the transport), unless recent;
- operator controls (ADR 100): ``completed_after_cancel`` (a cancelled job is never
  completed afterwards), ``released_not_scheduled`` (``Released`` only from scheduled),
  ``cancel_after_terminal`` (no ``CancelRequested`` or ``Cancelled`` after a terminal
  status); an operator's ``Requeued`` (with an actor) may end a running attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

PENDING, IN_PROGRESS, COMPLETED, DEAD_LETTERED, SCHEDULED, CANCELLED = (
    "pending", "in_progress", "completed", "dead_lettered", "scheduled", "cancelled",
)
TERMINAL = frozenset({COMPLETED, DEAD_LETTERED, CANCELLED})
CONTROLS = frozenset({"Released", "CancelRequested", "Cancelled"})

REPORTS = frozenset({"HeartbeatRecorded", "Completed", "Failed", "StaleDetected"})
DISPATCHED = frozenset({"Enqueued", "Requeued", "Redriven", "Released"})


class Step(NamedTuple):
    """One event of a job, as much of it as the audit needs."""

    position: int
    """The event's position in the log."""
    version: int
    type: str
    """The event class name: ``Enqueued``, ``Claimed``, ..."""
    at: datetime
    attempt: int | None = None
    worker_id: str | None = None
    dead_letter_version: int | None = None
    actor: str | None = None
    """The operator of a ``Requeued`` (``None``: the retry policy's)."""
    scheduled: bool = False
    """An ``Enqueued`` with ``run_at`` or a ``Requeued`` with ``not_before``."""


@dataclass(frozen=True, slots=True)
class Violation:
    job_id: str
    """The job whose history breaks the invariant (an archive's: the segment's name)."""
    invariant: str
    detail: str
    version: int | None = None
    queue: str | None = None
    """The queue a queue-level invariant (a pause, a cap) is about; else ``None``."""


@dataclass(frozen=True, slots=True)
class Pending:
    """Not a violation yet: an alert within its grace, a message being sent."""

    job_id: str
    kind: str
    """``alert`` or ``dispatch``."""
    detail: str


@dataclass(frozen=True, slots=True)
class Limits:
    """What the audit allows for work still in flight."""

    now: datetime
    alert_grace: timedelta
    """A dead letter younger than this without an alert is pending, not missing."""
    dispatched_upto: int | None
    """The dispatcher's tracked position; ``None`` skips the transport check."""
    in_flight: timedelta
    """An undispatched event younger than this is in flight, not lost."""


@dataclass
class JobAudit:
    """Folds one job's events and collects what breaks an invariant."""

    job_id: str
    status: str | None = None
    attempt: int = 0
    worker_id: str | None = None
    last_position: int = 0
    last_version: int = 0
    dead_letters: dict[int, datetime] = field(default_factory=dict)
    alerts: dict[int, int] = field(default_factory=dict)
    undispatched: list[Step] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    refused_reports: int = 0
    stale_detections: int = 0

    def _violate(self, invariant: str, detail: str, step: Step | None = None) -> None:
        self.violations.append(Violation(
            self.job_id, invariant, detail, None if step is None else step.version,
        ))

    def feed(self, step: Step, dispatched_upto: int | None = None) -> None:
        """Apply the job's next event (in version order)."""
        self.last_position = step.position
        self.last_version = step.version
        kind = step.type
        if dispatched_upto is not None and kind in DISPATCHED and step.position > dispatched_upto:
            self.undispatched.append(step)
        if self.status is None:
            if kind != "Enqueued":
                self._violate("lifecycle", f"history starts with {kind}, not Enqueued", step)
            self.status = SCHEDULED if step.scheduled else PENDING
            if kind == "Enqueued":
                return
        if kind == "Enqueued":
            self._violate("lifecycle", "enqueued twice", step)
        elif kind == "Claimed":
            self._claimed(step)
        elif kind in REPORTS:
            self._report(step)
        elif kind in ("AlertSent", "AlertFailed"):
            self._alert(step)
        elif kind == "ReportRefused":
            self.refused_reports += 1
        elif kind in CONTROLS:
            self._control(step)
        else:
            self._decision(step)

    def _decision(self, step: Step) -> None:
        """A requeue, dead letter or redrive."""
        kind = step.type
        if kind == "Requeued":
            operator = step.actor is not None and self.status in (IN_PROGRESS, SCHEDULED)
            if self.status == IN_PROGRESS and not operator:
                self._violate("claim_not_ended",
                              f"requeued while attempt {self.attempt} is in progress", step)
            elif self.status != PENDING and not operator:
                self._violate("lifecycle", f"requeued while {self.status}", step)
            self.status = SCHEDULED if step.scheduled else PENDING
        elif kind == "DeadLettered":
            if self.status in TERMINAL:
                self._violate("lifecycle", f"dead-lettered while {self.status}", step)
            self.status = DEAD_LETTERED
            self.dead_letters[step.version] = step.at
        elif kind == "Redriven":
            if self.status != DEAD_LETTERED:
                self._violate("lifecycle", f"redriven while {self.status}", step)
            self.status = PENDING

    def _control(self, step: Step) -> None:
        """A release, a cancel request or a cancel (ADR 100)."""
        kind = step.type
        if kind == "Released":
            if self.status != SCHEDULED:
                self._violate("released_not_scheduled", f"released while {self.status}", step)
            self.status = PENDING
            return
        if self.status in TERMINAL:
            self._violate("cancel_after_terminal", f"{kind} while {self.status}", step)
        elif kind == "CancelRequested" and self.status != IN_PROGRESS:
            self._violate("lifecycle", f"cancel requested while {self.status}", step)
        if kind == "Cancelled":
            self.status = CANCELLED

    def _alert(self, step: Step) -> None:
        version = step.dead_letter_version
        if version is None or version not in self.dead_letters:
            self._violate("alert_unknown", f"alert for no dead letter (v{version})", step)
            return
        self.alerts[version] = self.alerts.get(version, 0) + 1
        if self.alerts[version] > 1:
            self._violate("alert_duplicate",
                          f"{self.alerts[version]} alerts for the dead letter at v{version}",
                          step)

    def _claimed(self, step: Step) -> None:
        if self.status == IN_PROGRESS:
            self._violate("claim_not_ended",
                          f"attempt {self.attempt} never ended: claimed again", step)
        elif self.status != PENDING:
            self._violate("lifecycle", f"claimed while {self.status}", step)
        expected = self.attempt + 1
        if step.attempt != expected:
            self._violate("lifecycle", f"claim opened attempt {step.attempt}, not {expected}",
                          step)
        self.attempt = step.attempt if step.attempt is not None else expected
        self.worker_id = step.worker_id
        self.status = IN_PROGRESS

    def _report(self, step: Step) -> None:
        if step.type == "Completed" and self.status == CANCELLED:
            self._violate("completed_after_cancel",
                          f"attempt {step.attempt} completed after the job was cancelled", step)
            return
        current = self.status == IN_PROGRESS and step.attempt == self.attempt
        if step.type != "StaleDetected":  # the monitor detects; the attempt's worker reports
            current = current and step.worker_id == self.worker_id
        if not current:
            self._violate(
                "superseded_attempt",
                f"{step.type} applied to attempt {step.attempt} ({step.worker_id}) while the "
                f"job is {self.status} at attempt {self.attempt} ({self.worker_id})",
                step,
            )
            return
        if step.type == "Completed":
            self.status = COMPLETED
        elif step.type in ("Failed", "StaleDetected"):
            self.status = PENDING
            self.stale_detections += step.type == "StaleDetected"

    def finish(self, limits: Limits) -> list[Pending]:
        """Check what can only be judged at the end; return what is still in flight."""
        pending: list[Pending] = []
        for version, at in self.dead_letters.items():
            if self.alerts.get(version, 0):
                continue
            age = limits.now - at
            if age <= limits.alert_grace:
                pending.append(Pending(self.job_id, "alert",
                                       f"dead letter v{version}, {age.total_seconds():.0f}s old"))
            else:
                self._violate("alert_missing",
                              f"no alert for the dead letter at v{version} after "
                              f"{age.total_seconds():.0f}s")
        upto = limits.dispatched_upto
        for step in self.undispatched:
            if upto is not None and step.position <= upto:
                continue
            age = limits.now - step.at
            if age <= limits.in_flight:
                pending.append(Pending(self.job_id, "dispatch",
                                       f"{step.type} v{step.version} being sent"))
            else:
                self._violate("not_dispatched",
                              f"{step.type} v{step.version} (position {step.position}) not "
                              f"sent after {age.total_seconds():.0f}s", step)
        return pending


def audit_history(job_id: str, steps: list[Step], limits: Limits) -> tuple[
    list[Violation], list[Pending]
]:
    """Audit one job's whole history at once (what the tests and small tools use)."""
    audit = JobAudit(job_id)
    for step in steps:
        audit.feed(step, limits.dispatched_upto)
    pending = audit.finish(limits)
    return audit.violations, pending
