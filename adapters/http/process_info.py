"""Which API process answers: ``ledger serve --processes N`` runs N of them on one port.

The supervisor (:mod:`adapters.cli.serve_processes`) starts each child with its index,
the count and an opaque id in the environment; a lone ``ledger serve`` is process 0 of 1
with an id of its own. ``/health`` names the process that answered (its ``process``
field) and so does the ``X-Served-By`` header, by that id: a caller can tell the
processes apart without learning their pids (the supervisor prints which pid has which
id, for the operator). Every other per-process figure (``/metrics``, the limiter's
fallback, uptime) is that process's own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

import msgspec

INDEX_VARIABLE = "LEDGER_PROCESS_INDEX"
COUNT_VARIABLE = "LEDGER_PROCESSES"
PARENT_VARIABLE = "LEDGER_PARENT_PID"
ID_VARIABLE = "LEDGER_PROCESS_ID"
ID_BYTES = 6
"""An id is 12 hex digits, new at each start (a restarted child has a new one)."""
_OWN_ID = secrets.token_hex(ID_BYTES)
"""This process's id when no supervisor gave it one."""


def new_process_id() -> str:
    """An opaque id for a process that is about to start."""
    return secrets.token_hex(ID_BYTES)


class ProcessHealth(msgspec.Struct):
    """The API process that answered."""

    id: str
    """Opaque, the same as the ``X-Served-By`` header; never the pid."""
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
    given = env.get(ID_VARIABLE, "")
    own = given if given.isalnum() and len(given) <= 64 else _OWN_ID
    return ProcessHealth(id=own, index=index, processes=max(count, 1))
