"""The fault suite's handler: records every run, so duplicate executions can be counted."""

from __future__ import annotations

import os
from typing import Any

import anyio

from adapters.worker.context import JobContext


async def counted(ctx: JobContext) -> dict[str, Any]:
    """Append ``job_id attempt`` to ``$FAULTS_RUNS_FILE``, sleep ``seconds``, fail if asked."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    with open(os.environ["FAULTS_RUNS_FILE"], "a") as runs:
        runs.write(f"{ctx.job_id} {ctx.attempt}\n")
    await anyio.sleep(float(payload.get("seconds", 0.1)))
    if payload.get("poison"):
        raise RuntimeError("poison: fails every attempt")
    return {"ok": True}
