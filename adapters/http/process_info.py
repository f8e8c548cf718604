"""Which API process answers: ``ledger serve --processes N`` runs N of them on one port.

The supervisor (:mod:`adapters.cli.serve_processes`) starts each child with its index and
the count in the environment; a lone ``ledger serve`` is process 0 of 1. ``/health``
names the process that answered (its ``process`` field), so a caller can tell them apart;
every other per-process figure (``/metrics``, the limiter's fallback, uptime) is that
process's own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

INDEX_VARIABLE = "LEDGER_PROCESS_INDEX"
COUNT_VARIABLE = "LEDGER_PROCESSES"
PARENT_VARIABLE = "LEDGER_PARENT_PID"


class ProcessHealth(msgspec.Struct):
    """The API process that answered."""

    pid: int
    index: int
    """0 to ``processes - 1``; a restarted child keeps the index of the one it replaces."""
    processes: int


def process_of(env: Mapping[str, str] | None = None) -> ProcessHealth:
    """This process, as the supervisor described it in ``env`` (default: the environment)."""
    env = os.environ if env is None else env
    try:
        index = int(env.get(INDEX_VARIABLE, "0"))
        count = int(env.get(COUNT_VARIABLE, "1"))
    except ValueError:
        index, count = 0, 1
    return ProcessHealth(pid=os.getpid(), index=index, processes=max(count, 1))
