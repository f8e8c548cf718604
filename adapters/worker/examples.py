"""Example job handlers, shipped with the package so they load from any directory:
``ledger worker --handler adapters.worker.examples:NAME``.

Each takes the job's context and returns its result (JSON) or raises; the payload shapes
are small dicts, all keys optional:

- ``noop``: returns at once, ``{"ok": true}``;
- ``sleepy``: async, sleeps ``payload["seconds"]`` (default 1), returns ``{"slept": s}``;
- ``sleepy_plain``: the same as a plain function in a thread, checking ``ctx.cancelled``;
- ``flaky``: fails the first ``payload["failures"]`` attempts (default 1), then succeeds;
- ``always_fails``: raises every time (the job is retried, then dead-lettered).
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from adapters.worker import JobContext


def _payload(ctx: JobContext) -> dict[str, Any]:
    return ctx.payload if isinstance(ctx.payload, dict) else {}


def noop(ctx: JobContext) -> dict[str, bool]:
    """Do nothing, successfully."""
    return {"ok": True}


async def sleepy(ctx: JobContext) -> dict[str, float]:
    """Sleep ``seconds`` (cancelled outright if the attempt is superseded)."""
    seconds = float(_payload(ctx).get("seconds", 1.0))
    await anyio.sleep(seconds)
    return {"slept": seconds}


def sleepy_plain(ctx: JobContext) -> dict[str, float]:
    """Sleep ``seconds`` in a thread, in small steps, stopping when told to."""
    seconds = float(_payload(ctx).get("seconds", 1.0))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.raise_if_cancelled()
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return {"slept": seconds}


def flaky(ctx: JobContext) -> dict[str, int]:
    """Fail the first ``failures`` attempts, then succeed."""
    failures = int(_payload(ctx).get("failures", 1))
    if ctx.attempt <= failures:
        raise RuntimeError(f"flaky: attempt {ctx.attempt} of {failures} planned failures")
    return {"succeeded_on_attempt": ctx.attempt}


def always_fails(ctx: JobContext) -> None:
    """Fail, every time."""
    raise RuntimeError(f"always_fails: attempt {ctx.attempt} failed, as it always does")
