"""The handler ``ledger demo`` runs on its workers (importable by a worker process)."""

from __future__ import annotations

from typing import Any

import anyio

from adapters.worker import JobContext


async def work(ctx: JobContext) -> dict[str, Any]:
    """Sleep ``seconds`` (``retry_seconds`` on later attempts); a ``poison`` job fails
    until its attempt exceeds ``fail_until``."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    if payload.get("poison") and ctx.attempt <= int(payload.get("fail_until", 3)):
        raise RuntimeError("ConnectionError: upstream refused the request")
    seconds = float(payload.get("seconds", 0.1))
    if ctx.attempt > 1 and "retry_seconds" in payload:
        seconds = float(payload["retry_seconds"])
    await anyio.sleep(seconds)
    return {"ok": True, "slept": seconds}
