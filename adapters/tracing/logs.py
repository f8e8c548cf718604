"""How the ``ledger`` processes log: human text (the default) or one JSON object per line.

``LOG_FORMAT=json`` makes every line one JSON object with ``ts``, ``level`` and
``logger``; a decision line (``adapters/tracing/decisions.py``, the worker's reports)
adds ``event``, ``job_id``, ``attempt``, ``trace_id`` and its fields, and any other line
its ``message``. The variable is read once, where a command sets logging up; a value
other than ``text`` or ``json`` stops the command naming it.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from ledger.errors import InvalidCommand

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class BadLogFormat(InvalidCommand):
    """LOG_FORMAT must be text or json."""

    code = "invalid_setting"


def log_format(environ: dict[str, str] | None = None) -> str:
    """``LOG_FORMAT`` from the environment, validated (default ``text``)."""
    value = (os.environ if environ is None else environ).get("LOG_FORMAT", "text")
    value = value.strip().lower() or "text"
    if value not in FORMATS:
        raise BadLogFormat(f"LOG_FORMAT must be text or json, not {value[:40]!r}")
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a decision's fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        decision = getattr(record, "decision", None)
        if isinstance(decision, dict):
            line.update(decision)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


def configure_logging(
    level: int | str = logging.INFO, text_format: str = TEXT_FORMAT, *, fmt: str | None = None
) -> str:
    """Set the root logger up on stderr in ``LOG_FORMAT`` (read here, once); the format."""
    chosen = fmt or log_format()
    handler = logging.StreamHandler(sys.stderr)
    if chosen == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(text_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    _CHOSEN[:] = [chosen]
    return chosen


_CHOSEN: list[str] = []


def json_logging() -> bool:
    """Whether :func:`configure_logging` chose JSON lines (the HTTP server then leaves
    uvicorn's loggers to the root's handler instead of its own text format)."""
    return _CHOSEN == ["json"]
