"""Handlers that only tests need (the friendly ones are in ``adapters/worker/examples.py``)."""

from __future__ import annotations

import time
from typing import Any

from adapters.worker import JobContext


def stubborn(ctx: JobContext) -> dict[str, Any]:
    """Sleep ``payload["seconds"]`` in one blocking call, deaf to cancellation."""
    seconds = float(ctx.payload.get("seconds", 1.0)) if isinstance(ctx.payload, dict) else 1.0
    time.sleep(seconds)
    return {"slept": seconds}
