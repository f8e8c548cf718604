"""The policies as long-running parts: the stale monitor and the dead-letter monitor.

Both find candidates in views (which may lag) and let the ledger re-decide each one
against the job itself, so several monitors at once never double an effect: a stale
episode is requeued once (the second detection is refused as ``NotStale`` or loses the
version race), a dead letter is recorded once, and its alert is recorded once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskStatus

from adapters.service import metrics
from adapters.service.session_worker import SessionWorker
from adapters.service.settings import Settings
from adapters.slack.webhook import AlertSink
from adapters.tracing import observe
from ledger.application import JobLedger, Result
from ledger.commands import DetectStale, RecordAlert, RecordQueueDeadLetter
from ledger.errors import IllegalTransition, JobNotFound, LedgerError, NotStale
from ledger.policies.alerts import (
    DeadLetterNotice,
    Delivered,
    PermanentFailure,
    RetryLater,
    due_groups,
    slack_message,
)
from ledger.policies.retry import NextStep, Requeue, next_step
from ledger.policies.stale import StaleCandidate, StaleDecision, stale_cutoff, stale_decisions
from ledger.ports.transport import Transport
from ledger.text import normalise
from projections.queries.dead_letter_alerts import DeadLetterAlert, DeadLetterAlertQueries
from projections.queries.job_status import JobStatus, JobStatusQueries
from projections.store import ViewStore

log = logging.getLogger(__name__)

ALERTS_LOCK = "policy:alerts"
STALE_SCAN_LIMIT = 1000


PREVIEW_DRAW = 1.0
"""The random draw a preview of the retry policy assumes (the longest delay): whether the
job is requeued or dead-lettered never depends on it."""


@dataclass(frozen=True, slots=True)
class StaleFinding:
    """A job the view shows stale: the stale rule's decision and the step that follows."""

    job: JobStatus
    decision: StaleDecision
    step: NextStep

    @property
    def action(self) -> str:
        """``requeue`` or ``dead-letter`` (attempts used up)."""
        return "requeue" if isinstance(self.step, Requeue) else "dead-letter"

    @property
    def silent_for(self) -> timedelta:
        return self.decision.silent_for


@dataclass
class ScanReport:
    candidates: int = 0
    requeued: int = 0
    dead_lettered: int = 0
    not_stale: int = 0
    errors: list[str] = field(default_factory=list)


class StaleMonitor(SessionWorker):
    """Every ``CHECK_INTERVAL_SECONDS``: requeue (or dead-letter) jobs that went silent."""

    def __init__(
        self,
        store: ViewStore,
        ledger: JobLedger,
        settings: Settings,
        *,
        clock: Callable[[], datetime],
        detected_by: str,
        reopen: Callable[[], ViewStore] | None = None,
    ) -> None:
        super().__init__(store, "stale monitor", reopen)
        self._ledger = ledger
        self._threshold = settings.stale_threshold
        self._interval = settings.check_interval_seconds
        self._clock = clock
        self._detected_by = detected_by
        self.scans = 0

    def findings(self) -> list[StaleFinding]:
        """What a scan would act on now (``ledger stale scan --dry-run``)."""
        now = self._clock()
        jobs = {
            job.job_id: job
            for job in JobStatusQueries(self._store).in_progress_before(
                stale_cutoff(now, self._threshold), limit=STALE_SCAN_LIMIT
            )
        }
        candidates = (_candidate(job) for job in jobs.values())
        policy = self._ledger.retry_policy
        findings = []
        for decision in stale_decisions(candidates, now, self._threshold):
            job = jobs[decision.job_id]
            delay = policy.delay(job.attempts_used, job.max_attempts, PREVIEW_DRAW)
            step = next_step(job.attempts_used, job.max_attempts, delay, now)
            findings.append(StaleFinding(job, decision, step))
        return findings

    def scan(self) -> ScanReport:
        """Find stale candidates and let the ledger decide each one."""
        findings = self.findings()
        report = ScanReport(candidates=len(findings))
        if not findings:
            return report
        commands = [
            DetectStale(
                job_id=f.decision.job_id, attempt=f.decision.attempt,
                detected_by=self._detected_by,
            )
            for f in findings
        ]
        results = self._ledger.execute_batch(commands, self._clock())
        observe(commands, results)
        for result in results:
            self._count(report, result)
        self.scans += 1
        return report

    @staticmethod
    def _count(report: ScanReport, result: Result) -> None:
        if isinstance(result, NotStale):
            report.not_stale += 1
        elif isinstance(result, LedgerError):
            report.errors.append(str(result))
        elif result.status == "dead_lettered":
            report.dead_lettered += 1
            metrics.STALE_DETECTIONS.inc()
            metrics.DEAD_LETTERS.inc()
        else:
            report.requeued += 1
            metrics.STALE_DETECTIONS.inc()
            metrics.REQUEUES.labels(reason="stale").inc()

    async def __call__(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                report = await self._sync(self.scan)
            except Exception as error:  # the database may be restarting: try next round
                log.warning("stale monitor: scan failed: %s", error)
                await self._sync(self._reconnect)
            else:
                if report.requeued or report.dead_lettered:
                    log.info(
                        "stale monitor: %d requeued, %d dead-lettered (%d candidates, "
                        "%d had moved on)", report.requeued, report.dead_lettered,
                        report.candidates, report.not_stale,
                    )
                for error_text in report.errors:
                    log.warning("stale monitor: %s", error_text)
            await anyio.sleep(self._interval)


def _candidate(job: JobStatus) -> StaleCandidate:
    """The stale rule's view of a ``job_status`` row."""
    return StaleCandidate(
        job.job_id, job.attempt, job.status, job.worker_id,
        job.last_heartbeat_at or job.started_at or job.enqueued_at,
    )


@dataclass
class _Retry:
    attempts: int
    not_before: datetime


class DeadLetterMonitor(SessionWorker):
    """Records dead letters found in the transport's DLQ, and alerts each dead letter once.

    Every ``DLQ_CHECK_INTERVAL_SECONDS`` it reads the transport's dead-letter queue and
    records each message's job as dead-lettered (then deletes the message). Every
    ``tick`` seconds it reads the alert outbox (the ``dead_letter_alerts`` view), groups
    what is due (``DLQ_ALERT_THRESHOLD``, ``ALERT_GROUP_WAIT_SECONDS``), posts it, and
    records the delivery (or a permanent failure) on each job. 429 and 5xx answers are
    retried after their delay; a permanent 4xx is recorded and not retried.
    """

    def __init__(
        self,
        store: ViewStore,
        ledger: JobLedger,
        transport: Transport | None,
        sink: AlertSink,
        settings: Settings,
        *,
        clock: Callable[[], datetime],
        channel: str,
        tick: float = 1.0,
        reopen: Callable[[], ViewStore] | None = None,
    ) -> None:
        super().__init__(store, "dead-letter monitor", reopen)
        self._ledger = ledger
        self._transport = transport
        self._sink = sink
        self._settings = settings
        self._clock = clock
        self._channel = channel
        self._tick = tick
        self._retries: dict[str, _Retry] = {}
        self.holding_alerts = False
        self.recorded_from_queue = 0
        self.alerts_sent = 0
        self.alerts_failed = 0

    async def __call__(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        interval = self._settings.dlq_check_interval_seconds
        next_queue_scan = 0.0
        try:
            while True:
                now = anyio.current_time()
                if self._transport is not None and now >= next_queue_scan:
                    next_queue_scan = now + interval
                    await self._guarded(self.scan_queue)
                await self._guarded(self.deliver_alerts)
                await anyio.sleep(self._tick)
        finally:
            with anyio.CancelScope(shield=True):
                if self.holding_alerts:
                    await self._sync(self._store.unlock, ALERTS_LOCK)

    async def _guarded(self, step: Callable[[], Any]) -> None:
        try:
            await step()
        except Exception as error:  # a database or queue restarting: next round
            log.warning("dead-letter monitor: %s failed: %s", step.__name__, error)
            if await self._sync(self._reconnect):
                self.holding_alerts = False  # the lock died with the old session

    async def scan_queue(self) -> int:
        """Record every job whose message sits in the transport's DLQ; return how many."""
        assert self._transport is not None
        recorded = 0
        for _ in range(100):  # bounded: at most 1,000 dead letters per scan
            letters = await self._transport.read_dead_letters(max_messages=10)
            if not letters:
                break
            for letter in letters:
                if letter.message is None:
                    log.error("dead-letter queue holds a message that is not a job message: "
                              "%s (left in place)", letter.message_id)
                    continue
                command = RecordQueueDeadLetter(
                    job_id=letter.message.job_id, message_id=letter.message_id,
                    receive_count=letter.receive_count, message_attempt=letter.message.attempt,
                    max_receives=letter.max_receives,
                )
                result = await self._sync(self._ledger.execute_batch, [command], self._clock())
                observe([command], result)
                if isinstance(result[0], IllegalTransition | JobNotFound):
                    log.info("dead letter %s: %s (deleted)", letter.message_id, result[0])
                elif isinstance(result[0], LedgerError):
                    raise result[0]
                else:
                    recorded += 1
                    metrics.DEAD_LETTERS.inc()
                await self._transport.delete_dead_letter(letter)
            if all(letter.message is None for letter in letters):
                break
        self.recorded_from_queue += recorded
        return recorded

    async def deliver_alerts(self) -> int:
        """Post the alerts that are due; return how many dead letters they covered."""
        if not self.holding_alerts:
            self.holding_alerts = await self._sync(self._store.try_lock, ALERTS_LOCK)
            if not self.holding_alerts:
                return 0
        pending = await self._sync(DeadLetterAlertQueries(self._store).pending)
        now = self._clock()
        notices = []
        for alert in pending:
            retry = self._retries.get(_key(alert))
            if retry is not None and now < retry.not_before:
                continue
            notice = await self._sync(self._notice, alert)
            if notice is not None:
                notices.append(notice)
        groups = due_groups(
            notices, now, threshold=self._settings.dlq_alert_threshold,
            group_wait=timedelta(seconds=self._settings.alert_group_wait_seconds),
        )
        covered = 0
        for group in groups:
            covered += await self._post(group)
        return covered

    def _notice(self, alert: DeadLetterAlert) -> DeadLetterNotice | None:
        """The alert's notice, or None if the ledger already has its alert (the view lags)."""
        try:
            job = self._ledger.get_job(alert.job_id)
        except JobNotFound:  # pragma: no cover - the log says it exists
            return None
        if job.alerted_version is not None and job.alerted_version >= alert.dead_letter_version:
            return None
        return DeadLetterNotice(
            job_id=alert.job_id, dead_letter_version=alert.dead_letter_version,
            customer_id=job.customer_id, attempts=alert.attempts_used,
            message_id=alert.message_id, last_error=alert.last_error,
            dead_lettered_at=alert.dead_lettered_at,
        )

    async def _post(self, group: list[DeadLetterNotice]) -> int:
        keys = [n.key for n in group]
        attempt = 1 + max((self._retries[k].attempts for k in keys if k in self._retries),
                          default=0)
        outcome = await self._sink.post(slack_message(group), attempt)
        now = self._clock()
        if isinstance(outcome, RetryLater):
            metrics.ALERTS_FAILED.inc()
            self.alerts_failed += 1
            log.warning("alert for %d dead letters not delivered (%s); retrying in %.1fs",
                        len(group), outcome.reason, outcome.delay.total_seconds())
            for key in keys:
                self._retries[key] = _Retry(attempt, now + outcome.delay)
            return 0
        delivery = uuid.uuid4().hex
        # The webhook's answer is not ours to refuse: made storable (ledger.text), recorded.
        failure = normalise(outcome.reason, 2000)[0] if isinstance(
            outcome, PermanentFailure) else None
        if failure is not None:
            metrics.ALERTS_FAILED.inc()
            self.alerts_failed += 1
            log.error("alert for %d dead letters failed for good: %s", len(group), failure)
        else:
            assert isinstance(outcome, Delivered)
            metrics.ALERTS_SENT.inc(len(group))
            self.alerts_sent += len(group)
        commands = [
            RecordAlert(job_id=n.job_id, dead_letter_version=n.dead_letter_version,
                        channel=self._channel, delivery_id=None if failure else delivery,
                        failure=failure)
            for n in group
        ]
        results = await self._sync(self._ledger.execute_batch, commands, now)
        observe(commands, results)
        for key in keys:
            self._retries.pop(key, None)
        for result in results:
            if isinstance(result, LedgerError):
                log.info("alert record: %s", result)
        return len(group)


def _key(alert: DeadLetterAlert) -> str:
    return f"{alert.job_id}:{alert.dead_letter_version}"
