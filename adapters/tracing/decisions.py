"""Every decision the ledger records, as one log line and (with the extra) one span.

:func:`observe` is called with a batch's commands and results wherever commands are
executed (the batch writer behind the HTTP API and in-process workers, the monitors, the
scheduler, bulk actions): for each command the ledger accepted it logs one line through
the ``ledger.decisions`` logger carrying ``event``, ``job_id``, ``attempt`` and
``trace_id`` (one JSON object under ``LOG_FORMAT=json``, ``adapters/tracing/logs.py``)
and makes the decision's span under the producer's trace (``spans.py``). High-volume
steps (enqueue, claim, report, release) log at DEBUG, the policies' and operators'
decisions at INFO. A refusal (a ``LedgerError`` result) is not a decision: nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from adapters.tracing import otel
from adapters.tracing.context import trace_id_of
from adapters.tracing.spans import decision_span
from ledger.commands import (
    CancelJob,
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    Outcome,
    RecordAlert,
    RecordHeartbeat,
    RecordQueueDeadLetter,
    RedriveJob,
    ReleaseJob,
    ReportCancelled,
    RequeueJob,
)

log = logging.getLogger("ledger.decisions")

RETRIED = frozenset({"pending", "scheduled"})


def decision_extra(
    event: str, job_id: object, attempt: int, traceparent: str | None, **fields: Any
) -> dict[str, Any]:
    """The ``extra`` of a decision log line (what the JSON formatter writes)."""
    return {"decision": {"event": event, "job_id": str(job_id), "attempt": attempt,
                         "trace_id": trace_id_of(traceparent), **fields}}


def observe(commands: Sequence[Any], results: Sequence[Any]) -> None:
    """Log and trace the decisions of one executed batch (results in command order)."""
    tracing = otel.TRACER is not None
    if not tracing and not log.isEnabledFor(logging.INFO):
        return
    debug = log.isEnabledFor(logging.DEBUG)
    # without DEBUG, the per-job steps have nothing to say (traced: but the enqueue's span)
    skipped = frozenset() if debug else _UNTRACED_STEPS if tracing else _PER_JOB_STEPS
    for command, result in zip(commands, results, strict=False):
        if type(command) in skipped:
            continue
        if isinstance(result, Outcome):
            for event, level, fields in _decisions(command, result):
                _record(event, level, result, fields, debug=debug, tracing=tracing)


def _record(
    event: str, level: int, outcome: Outcome, fields: dict[str, Any], *, debug: bool,
    tracing: bool,
) -> None:
    if level >= logging.INFO or debug:
        detail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        log.log(level, "job %s attempt %d %s%s", outcome.job_id, outcome.attempt, event,
                f" ({detail})" if detail else "",
                extra=decision_extra(event, outcome.job_id, outcome.attempt,
                                     outcome.traceparent, status=outcome.status, **fields))
    if tracing and event in SPANS:
        attributes = {f"job.{k}": v for k, v in fields.items() if isinstance(v, str | int)}
        decision_span(f"job.{event}", outcome.job_id, outcome.attempt, outcome.traceparent,
                      {"job.status": outcome.status, **attributes})


SPANS = frozenset({
    "enqueued", "stale_detected", "requeued", "dead_lettered", "alert_sent", "alert_failed",
    "redriven", "cancelled", "operator_requeued",
})
"""Decisions that get a span (a claim or report is inside the worker's attempt span)."""

_Decision = tuple[str, int, dict[str, Any]]
_PER_JOB_STEPS = frozenset({
    EnqueueJob, ClaimJob, RecordHeartbeat, CompleteJob, ReportCancelled, ReleaseJob,
})
"""Commands whose only decision is a DEBUG line (and, traced, a span at most)."""
_UNTRACED_STEPS = _PER_JOB_STEPS - {EnqueueJob}
"""Of those, the ones that make no span either (a claim's or report's is the attempt's)."""


def _decisions(command: Any, outcome: Outcome) -> list[_Decision]:
    debug, info = logging.DEBUG, logging.INFO
    match command:
        case EnqueueJob():
            return [("enqueued", debug, {"queue": command.queue})] if outcome.created else []
        case ClaimJob():
            return [("claimed", debug, {"worker_id": command.worker_id})]
        case CompleteJob() | ReportCancelled():
            return [("reported", debug, {"worker_id": command.worker_id})]
        case FailJob():
            return [("reported", debug, {"worker_id": command.worker_id}),
                    _after_failure(outcome, "failed")]
        case DetectStale():
            return [("stale_detected", info, {"detected_by": command.detected_by}),
                    _after_failure(outcome, "stale")]
        case RecordQueueDeadLetter():
            return [("dead_lettered", info, {"source": "transport",
                                             "message_id": command.message_id})]
        case RecordAlert():
            event = "alert_failed" if command.failure else "alert_sent"
            return [(event, info, {"channel": command.channel, "error": command.failure})]
        case RedriveJob() | CancelJob() | RequeueJob():
            # one job of a bulk action: DEBUG (the action logs its progress at INFO)
            level = info if command.action_id is None else debug
            return [(_CONTROLS[type(command)], level, {
                "actor": command.actor, "reason": command.reason,
                "action_id": command.action_id})]
        case ReleaseJob():
            return [("released", debug, {})]
    return []


_CONTROLS = {RedriveJob: "redriven", CancelJob: "cancelled", RequeueJob: "operator_requeued"}


def _after_failure(outcome: Outcome, reason: str) -> _Decision:
    if outcome.status in RETRIED:
        return ("requeued", logging.INFO, {"reason": reason})
    if outcome.status == "dead_lettered":
        return ("dead_lettered", logging.INFO, {"reason": reason})
    return ("ended", logging.INFO, {"reason": reason})


_QUEUE_EVENTS = {"pause_queue": "queue_paused", "resume_queue": "queue_resumed",
                 "set_queue_limit": "queue_limited"}


def observe_queue(command: Any, outcome: Any) -> None:
    """An operator's queue control (pause, resume, limit) that changed the queue: one INFO
    line (no job, no attempt, no trace: a queue is no job's step)."""
    if not outcome.changed or not log.isEnabledFor(logging.INFO):
        return
    event = _QUEUE_EVENTS.get(str(type(command).__struct_config__.tag), "queue_control")
    fields = {"queue": command.queue, "actor": command.actor, "reason": command.reason,
              "paused": outcome.paused, "max_running": outcome.max_running}
    detail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    log.info("queue %s %s (%s)", command.queue, event, detail, extra={"decision": {
        "event": event, "job_id": None, "attempt": None, "trace_id": None, **fields}})
