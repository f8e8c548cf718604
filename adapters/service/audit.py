"""``ledger audit``: check the ledger's invariants from the log and the views.

Reads the log once, in pages of raw rows (decoded by :func:`projections.events.decode_page`,
never one ``get`` per job), up to the head it saw when it started, and folds each job's
events into a :class:`ledger.audit.JobAudit`. Then:

- the ``job_status`` view must show every job the log has, in the status the log gives it
  (for jobs whose last event the view has reached), and no job the log lacks;
- each view must equal a fresh rebuild (:func:`projections.rebuild.verify`), and a
  rebuild must fold the whole log (a view stopped at an event fails the audit);
- the dispatcher's tracking position must be past every enqueue, requeue and redrive,
  except the last few seconds' (reported as in flight);
- no job of a paused queue is claimed and no queue runs more jobs than its cap, at any
  position (:mod:`ledger.queue_audit`; the queue aggregates' events feed it, the bulk
  actions' are not a job's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.service.dispatcher import DISPATCH
from ledger.audit import IN_PROGRESS, JobAudit, Limits, Pending, Step, Violation
from ledger.errors import LedgerError
from ledger.queue_audit import QueueAudit
from projections.events import (
    ActionBody,
    Enqueued,
    Event,
    QueueBody,
    QueueLimitSet,
    QueueOpened,
    QueuePaused,
    QueueResumed,
    RawRow,
    ScheduleBody,
    decode_page,
)
from projections.job_status import JOB_STATUS
from projections.model import View
from projections.rebuild import REBUILD_PAGE, Start, verify
from projections.store import LIVE, ViewStore

AUDIT_PAGE = 20_000
IN_FLIGHT_SECONDS = 10.0
ALERT_MARGIN_SECONDS = 30.0

_STATUS = JOB_STATUS.columns.index(next(c for c in JOB_STATUS.columns if c.name == "status"))


@dataclass
class ArchiveAudit:
    """What the archive adds to an audit (ADR 110): its segments' violations, the jobs
    they hold, where views are verified from, and (``--deep``) the whole log to fold."""

    violations: list[Violation] = field(default_factory=list)
    archived: frozenset[str] = frozenset()
    start: Start | None = None
    log: Iterable[list[RawRow]] | None = None


@dataclass
class ViewCheck:
    view: str
    position: int
    equal: bool
    differences: list[str] = field(default_factory=list)
    failure: str | None = None
    """Why a rebuild of the view stops before the head of the log."""

    @property
    def ok(self) -> bool:
        return self.equal and self.failure is None


@dataclass
class AuditReport:
    head: int
    events: int
    jobs: int
    dispatched_upto: int
    statuses: dict[str, int]
    refused_reports: int
    violations: list[Violation]
    pending: list[Pending]
    views: list[ViewCheck]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and all(v.ok for v in self.views)

    @property
    def offending_jobs(self) -> list[str]:
        return sorted({v.job_id for v in self.violations})

    def to_dict(self) -> dict[str, Any]:
        by_invariant = Counter(v.invariant for v in self.violations)
        return {
            "ok": self.ok,
            "head": self.head,
            "events": self.events,
            "jobs": self.jobs,
            "statuses": self.statuses,
            "dispatched_upto": self.dispatched_upto,
            "refused_reports": self.refused_reports,
            "violations_by_invariant": dict(sorted(by_invariant.items())),
            "offending_jobs": self.offending_jobs,
            "violations": [
                {"job_id": v.job_id, "invariant": v.invariant, "detail": v.detail,
                 "version": v.version, "queue": v.queue}
                for v in self.violations
            ],
            "pending": [
                {"job_id": p.job_id, "kind": p.kind, "detail": p.detail} for p in self.pending
            ],
            "views": [
                {"view": v.view, "position": v.position, "equal": v.equal,
                 "differences": v.differences, "failure": v.failure}
                for v in self.views
            ],
            "seconds": round(self.seconds, 3),
        }


def step_of(position: int, version: int, topic_name: str, body: Any, at: datetime) -> Step:
    return Step(
        position, version, topic_name, at,
        attempt=getattr(body, "attempt", None),
        worker_id=getattr(body, "worker_id", None),
        dead_letter_version=getattr(body, "dead_letter_version", None),
        actor=getattr(body, "actor", None) if topic_name == "Requeued" else None,
        scheduled=(getattr(body, "not_before", None) or getattr(body, "run_at", None))
        is not None,
    )


def feed_queue(queues: QueueAudit, event: Event) -> None:
    """One event of a queue aggregate."""
    body = event.body
    if isinstance(body, QueueOpened):
        queues.opened(event.originator_id, body.name)
    elif isinstance(body, QueuePaused | QueueResumed | QueueLimitSet):
        kind = {QueuePaused: "Paused", QueueResumed: "Resumed"}.get(type(body), "LimitSet")
        limit = body.max_running if isinstance(body, QueueLimitSet) else None
        queues.control(event.originator_id, kind, limit)


def feed_job(
    audits: dict[str, JobAudit], queues: QueueAudit | None, event: Event, upto: int | None
) -> None:
    """One event of a job: its own fold, then the queue invariants."""
    name = type(event.body).__name__
    job_id = event.originator_id
    audit = audits.get(job_id)
    if audit is None:
        audit = audits[job_id] = JobAudit(job_id)
    step = step_of(event.position, event.originator_version, name, event.body, event.at)
    audit.feed(step, upto)
    if queues is not None:
        if isinstance(event.body, Enqueued):
            queues.enqueued(job_id, event.body.queue)
        queues.job_step(job_id, step, audit.status == IN_PROGRESS)


def audit_log(
    store: ViewStore, *, page_size: int = AUDIT_PAGE, check_dispatch: bool = True,
    queues: QueueAudit | None = None, log: Iterable[list[RawRow]] | None = None,
) -> tuple[dict[str, JobAudit], int, int, int]:
    """Fold the whole log (``log``: the archive's and the hot log's pages, ADR 110) into
    one :class:`JobAudit` per job.

    Returns (audits, head, events read, dispatcher position).
    """
    head = store.head()
    dispatched = store.tracking(DISPATCH).position  # read after the head: may be past it
    upto = dispatched if check_dispatch else None
    audits: dict[str, JobAudit] = {}
    after, events = 0, 0
    source = iter(log) if log is not None else None
    while after < head:
        page = store.read_events(after, page_size, head) if source is None else [
            row for row in next(source, []) if row[0] <= head
        ]
        if not page:
            break
        decoded, error = decode_page(page)
        if error is not None:
            raise error
        for event in decoded:
            if isinstance(event.body, QueueBody):
                if queues is not None:
                    feed_queue(queues, event)
            elif not isinstance(event.body, ActionBody | ScheduleBody) and (
                type(event.body).__name__ != "RequestsTallied"
            ):
                feed_job(audits, queues, event, upto)
        events += len(decoded)
        after = page[-1][0]
    return audits, head, events, dispatched


def check_job_status(
    store: ViewStore, audits: dict[str, JobAudit], archived: frozenset[str] = frozenset()
) -> list[Violation]:
    """Every job of the log is in ``job_status`` with the log's status, and no other job
    (but the ``archived`` ones, whose events are in segments)."""
    violations: list[Violation] = []
    seen: set[str] = set()
    with store.snapshot():
        position = store.tracking(JOB_STATUS.name).position
        for row in store.rows(JOB_STATUS, LIVE):
            job_id = str(row[0])
            seen.add(job_id)
            audit = audits.get(job_id)
            if audit is None and job_id in archived:
                continue
            if audit is None:
                violations.append(Violation(job_id, "view_status",
                                            "in job_status but not in the log"))
            elif audit.last_position <= position and row[_STATUS] != audit.status:
                violations.append(Violation(
                    job_id, "view_status",
                    f"job_status says {row[_STATUS]}, the log says {audit.status}",
                ))
    for job_id, audit in audits.items():
        if job_id not in seen and audit.last_position <= position:
            violations.append(Violation(job_id, "view_status",
                                        f"{audit.status} in the log, missing from job_status"))
    return violations


def check_views(
    open_store: Callable[[], ViewStore], views: list[View], page_size: int = REBUILD_PAGE,
    start: Start | None = None,
) -> list[ViewCheck]:
    """Verify each view against a fresh rebuild of the log up to its position."""
    checks: list[ViewCheck] = []
    live, work, reader = open_store(), open_store(), open_store()
    try:
        for view in views:
            try:
                result = verify(live, work, view, page_size=page_size, reader=reader,
                                start=start)
            except LedgerError as error:  # no checkpoint holds the archived events (ADR 110)
                checks.append(ViewCheck(view.name, 0, False, [str(error)]))
                continue
            differences = [
                f"{t.table}: live {t.live_rows} rows, rebuilt {t.rebuilt_rows} rows; first "
                f"differing: live {d[0]!r} rebuilt {d[1]!r}"
                for t in result.tables if not t.equal for d in t.differences[:1]
            ]
            checks.append(ViewCheck(view.name, result.position, result.equal, differences,
                                    result.failure))
    finally:
        for store in (live, work, reader):
            store.close()
    return checks


def run_audit(
    open_store: Callable[[], ViewStore],
    views: list[View],
    *,
    now: Callable[[], datetime],
    alert_grace: timedelta,
    in_flight: timedelta = timedelta(seconds=IN_FLIGHT_SECONDS),
    check_dispatch: bool = True,
    archive: ArchiveAudit | None = None,
) -> AuditReport:
    """The whole audit: the log's invariants, ``job_status`` against the log, the views."""
    import time

    started = time.monotonic()
    store = open_store()
    try:
        queues = QueueAudit()
        archive = archive or ArchiveAudit()
        audits, head, events, dispatched = audit_log(
            store, check_dispatch=check_dispatch, queues=queues, log=archive.log
        )
        limits = Limits(now(), alert_grace, dispatched if check_dispatch else None, in_flight)
        violations: list[Violation] = []
        pending: list[Pending] = []
        for audit in audits.values():
            pending.extend(audit.finish(limits))
            violations.extend(audit.violations)
        violations.extend(queues.violations)
        violations.extend(archive.violations)
        violations.extend(check_job_status(store, audits, archive.archived))
    finally:
        store.close()
    view_checks = check_views(open_store, views, start=archive.start)
    statuses = Counter(a.status or "unknown" for a in audits.values())
    return AuditReport(
        head=head, events=events, jobs=len(audits), dispatched_upto=dispatched,
        statuses=dict(sorted(statuses.items())),
        refused_reports=sum(a.refused_reports for a in audits.values()),
        violations=violations, pending=pending, views=view_checks,
        seconds=time.monotonic() - started,
    )
