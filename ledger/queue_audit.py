"""The queue controls' invariants, folded over the whole log in order (ADR 100). Pure.

The audit (:mod:`adapters.service.audit`) feeds every queue event (``Opened``,
``Paused``, ``Resumed``, ``LimitSet``) and, after the job's own fold
(:class:`ledger.audit.JobAudit`), every job event with whether its job is in progress
afterwards. Invariants:

- ``claimed_while_paused``: no job of a queue is claimed between its ``Paused`` and the
  next ``Resumed``;
- ``cap_exceeded``: at no position of the log are more of a queue's jobs in progress than
  its ``max_running``. As the model keeps slots, the count starts at the queue's first
  control (``Opened``): an attempt claimed before that holds no slot and is not counted
  (docs/adr/0100-operator-controls.md), and a cap lowered below the jobs running is not a
  violation (only a claim beyond it is).

Slot events (``SlotTaken``/``SlotFreed``) are the model's bookkeeping; the audit checks
the jobs' own events instead, so a wrong slot count cannot hide an excess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.audit import Step, Violation


@dataclass
class QueueState:
    name: str
    paused: bool = False
    max_running: int | None = None
    running: set[str] = field(default_factory=set)
    """Jobs claimed since the queue was first controlled and still in progress."""
    most: int = 0


@dataclass
class QueueAudit:
    """Folds the log's queue events and its jobs' claims and ends, in log order."""

    queues: dict[str, QueueState] = field(default_factory=dict)
    """By queue name."""
    names: dict[str, str] = field(default_factory=dict)
    """Queue name by the queue aggregate's id."""
    queue_of: dict[str, str] = field(default_factory=dict)
    """Queue name by job id (from ``Enqueued``)."""
    violations: list[Violation] = field(default_factory=list)

    def opened(self, queue_id: str, name: str) -> None:
        self.names[queue_id] = name
        self.queues.setdefault(name, QueueState(name))

    def control(self, queue_id: str, kind: str, max_running: int | None = None) -> None:
        """``Paused``, ``Resumed`` or ``LimitSet`` of the queue aggregate ``queue_id``."""
        name = self.names.get(queue_id)
        if name is None:  # the lifecycle of the queue aggregate itself is the model's
            return
        queue = self.queues[name]
        if kind == "Paused":
            queue.paused = True
        elif kind == "Resumed":
            queue.paused = False
        elif kind == "LimitSet":
            queue.max_running = max_running

    def enqueued(self, job_id: str, queue: str) -> None:
        self.queue_of[job_id] = queue

    def job_step(self, job_id: str, step: Step, in_progress: bool) -> None:
        """A job's event, after the job's own fold; ``in_progress``: the job's status now."""
        name = self.queue_of.get(job_id)
        queue = self.queues.get(name) if name is not None else None
        if queue is None:
            return
        if step.type != "Claimed":
            if not in_progress:
                queue.running.discard(job_id)
            return
        if queue.paused:
            self._violate(job_id, queue.name, "claimed_while_paused",
                          f"attempt {step.attempt} claimed at position {step.position} while "
                          f"queue {queue.name!r} is paused", step)
        if in_progress:
            queue.running.add(job_id)
        queue.most = max(queue.most, len(queue.running))
        cap = queue.max_running
        if cap is not None and len(queue.running) > cap:
            self._violate(job_id, queue.name, "cap_exceeded",
                          f"{len(queue.running)} jobs of queue {queue.name!r} in progress at "
                          f"position {step.position}, over its cap of {cap}", step)

    def _violate(self, job_id: str, queue: str, invariant: str, detail: str,
                 step: Step) -> None:
        self.violations.append(Violation(job_id, invariant, detail, step.version, queue))
