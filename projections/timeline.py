"""Readable renderings of jobs and their histories (for the CLI and the demo)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.job import Job

_HIDDEN = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def event_name(event: Job.Event) -> str:
    return type(event).__qualname__.removeprefix("Job.")


def event_details(event: Job.Event) -> str:
    """The event's own fields as ``key=value`` pairs, times in ISO form."""
    parts = []
    for key, value in vars(event).items():
        if key in _HIDDEN or value is None:
            continue
        shown = value.isoformat(timespec="milliseconds") if isinstance(value, datetime) else value
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def event_record(event: Job.Event) -> dict[str, Any]:
    """The event as a JSON-ready dict: type, version, recorded_at, data."""
    data = {}
    for key, value in vars(event).items():
        if key in _HIDDEN:
            continue
        data[key] = value.isoformat() if isinstance(value, datetime) else value
    return {
        "type": event_name(event),
        "version": event.originator_version,
        "recorded_at": event.timestamp.isoformat(),
        "data": data,
    }


def job_summary(job: Job) -> dict[str, Any]:
    """The job's current state as a JSON-ready dict."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "job_id": str(job.id),
        "customer_id": job.customer_id,
        "queue": job.queue,
        "status": str(job.status),
        "attempt": job.attempt,
        "attempts_used": job.attempts_used,
        "max_attempts": job.max_attempts,
        "worker_id": job.worker_id,
        "enqueued_at": iso(job.enqueued_at),
        "claimed_at": iso(job.claimed_at),
        "last_heartbeat_at": iso(job.last_heartbeat_at),
        "finished_at": iso(job.finished_at),
        "not_before": iso(job.not_before),
        "last_error": job.last_error,
        "heartbeats": job.heartbeats,
        "redrives": job.redrives,
        "version": job.version,
    }
