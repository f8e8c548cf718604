"""The tracing hooks (ADR 125) without I/O: absent extra, header parsing, the context
an in-process enqueue captures, and decision log lines as JSON objects."""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from opentelemetry import trace

from adapters import tracing
from adapters.tracing import decisions, otel, spans
from adapters.tracing.logs import BadLogFormat, JsonFormatter, configure_logging, log_format
from job_ledger import calls
from job_ledger.local import command_of
from job_ledger.types import JobRequest
from ledger.commands import (
    CancelJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    Outcome,
    PauseQueue,
    QueueOutcome,
    RecordAlert,
)
from ledger.errors import NotStale
from ledger.job import Job
from tests.support.tracing import memory_exporter

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenTelemetry not installed: the guarded import finds nothing."""
    real = importlib.import_module

    def no_otel(name: str, package: str | None = None) -> Any:
        if name.startswith("opentelemetry"):
            raise ImportError(f"No module named {name!r}")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_otel)
    trace_module, tracer = otel._load()
    monkeypatch.setattr(otel, "TRACE", trace_module)
    monkeypatch.setattr(otel, "TRACER", tracer)


def test_without_the_extra_every_hook_is_a_no_op(
    absent: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (otel.TRACE, otel.TRACER, otel.enabled()) == (None, None, False)

    def no_span(*_: object, **__: object) -> None:
        raise AssertionError("a span was made without the extra")

    monkeypatch.setattr(decisions, "decision_span", no_span)
    memory_exporter()  # even with a provider set, nothing reaches it
    with trace.get_tracer("app").start_as_current_span("producer"):
        assert tracing.current_traceparent() is None
        assert calls.enqueue(JobRequest(payload=1), "acme").headers is None
        assert command_of(JobRequest(payload=1), "acme").traceparent is None
    attempt = tracing.start_attempt(uuid4(), 1, TRACEPARENT, "w1", "default")
    assert attempt is tracing.NO_TRACE
    with attempt.active():
        attempt.heartbeat("recorded")
        attempt.failed(RuntimeError("x"))
        attempt.reported("completed")
    attempt.end()
    tracing.decision_span("job.x", uuid4(), 1, TRACEPARENT)  # returns at its first line
    spans.dispatched([object()], [object()])  # returns before looking at its arguments
    logging.getLogger("ledger.decisions").setLevel(logging.WARNING)
    try:
        decisions.observe([EnqueueJob(customer_id="acme")], [_outcome()])
    finally:
        logging.getLogger("ledger.decisions").setLevel(logging.NOTSET)


@pytest.mark.parametrize(("header", "kept"), [
    (TRACEPARENT, TRACEPARENT),
    (f"  {TRACEPARENT} ", TRACEPARENT),
    ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-later", TRACEPARENT[:-2] + "01"),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", None),
    ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),
    ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
    ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
    ("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", None),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", None),
    ("00-\x00" + "a" * 30, None), ("", None), (None, None), ("0" * 10_000, None),
])
def test_a_traceparent_header_is_kept_only_when_valid(header: str | None, kept: str | None) -> None:
    assert tracing.parse_traceparent(header) == kept


def test_an_enqueue_in_process_carries_the_current_span() -> None:
    memory_exporter()
    with trace.get_tracer("app").start_as_current_span("producer") as span:
        command = command_of(JobRequest(payload=1), "acme")
        call = calls.enqueue(JobRequest(payload=1), "acme")
    context = span.get_span_context()
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    assert command.traceparent == expected
    assert call.headers == {"traceparent": expected}
    assert tracing.trace_id_of(command.traceparent) == f"{context.trace_id:032x}"


def test_an_event_recorded_before_traceparent_existed_still_applies() -> None:
    job = Job.enqueue(job_id=uuid4(), customer_id="acme", queue="q", payload=None,
                      max_attempts=3, idempotency_key=None, now=datetime.now(UTC))
    event = job.collect_events()[0]
    assert isinstance(event, Job.Enqueued)
    state = {k: v for k, v in event.__dict__.items() if k != "traceparent"}
    old = Job.Enqueued(**state)  # as the mapper rebuilds an old stored event
    assert old.traceparent is None
    rebuilt: Any = old.mutate(None)
    assert isinstance(rebuilt, Job)
    assert rebuilt.traceparent is None


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ledger.decisions")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def _outcome(status: str = "pending", attempt: int = 1, *, created: bool = True) -> Outcome:
    return Outcome(job_id=uuid4(), status=status, attempt=attempt, version=2, created=created,
                   traceparent=TRACEPARENT)


def test_each_decision_is_one_json_object_with_its_job_attempt_and_trace(
    json_lines: io.StringIO,
) -> None:
    commands: list[Any] = [
        EnqueueJob(customer_id="acme"),
        FailJob(job_id=uuid4(), attempt=1, worker_id="w1", error="boom"),
        DetectStale(job_id=uuid4(), attempt=2, detected_by="monitor-1"),
        RecordAlert(job_id=uuid4(), dead_letter_version=7, channel="slack", delivery_id="d1"),
        CancelJob(job_id=uuid4(), actor="cli:root", reason='odd "text"\nnewline'),
        DetectStale(job_id=uuid4(), attempt=1, detected_by="monitor-1"),
    ]
    results: list[Any] = [
        _outcome(), _outcome("pending"), _outcome("dead_lettered", 2),
        _outcome("dead_lettered", 2), _outcome("cancelled", 0), NotStale(uuid4(), "moved on"),
    ]
    decisions.observe(commands, results)
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "enqueued", "reported", "requeued", "stale_detected", "dead_lettered", "alert_sent",
        "cancelled",
    ]
    for line in lines:
        assert {"ts", "level", "event", "job_id", "attempt", "trace_id"} <= set(line)
        assert line["trace_id"] == TRACEPARENT[3:35]
    assert lines[6]["reason"] == 'odd "text"\nnewline'
    assert lines[6]["actor"] == "cli:root"
    assert [line["level"] for line in lines[:2]] == ["debug", "debug"]
    assert lines[2]["level"] == "info"


def test_log_format_is_text_or_json() -> None:
    assert log_format({}) == "text"
    assert log_format({"LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(BadLogFormat, match="LOG_FORMAT"):
        log_format({"LOG_FORMAT": "yaml"})
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert configure_logging(logging.INFO, fmt="json") == "json"
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_queue_control_that_changed_the_queue_is_one_json_line(
    json_lines: io.StringIO,
) -> None:
    pause = PauseQueue(queue="emails", actor="api:key:k1:staff", reason="smtp down")
    changed = QueueOutcome(queue="emails", paused=True, max_running=None, running=0,
                           version=1, changed=True)
    decisions.observe_queue(pause, changed)
    decisions.observe_queue(pause, msgspec.structs.replace(changed, changed=False))
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert len(lines) == 1
    assert {k: lines[0][k] for k in ("event", "job_id", "attempt", "queue", "actor")} == {
        "event": "queue_paused", "job_id": None, "attempt": None, "queue": "emails",
        "actor": "api:key:k1:staff"}
