"""Which job a command names before it is decided: its ``job_id``, or the id an
idempotent enqueue's key maps to."""

from __future__ import annotations

import uuid
from uuid import UUID

from ledger.commands import AnyCommand, EnqueueJob, JobCommand

IDEMPOTENCY_NAMESPACE = UUID("6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11")
"""Namespace of the uuid5 ids that make enqueue idempotent per (customer, key)."""


def idempotent_job_id(customer_id: str, idempotency_key: str) -> UUID:
    """The job id an idempotency key maps to: the same key always names the same job."""
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{customer_id}\x00{idempotency_key}")


def named_job(command: AnyCommand) -> UUID | None:
    """The job a command is about, if known before deciding: its ``job_id``, or the id an
    enqueue's idempotency key maps to (``None`` for an enqueue without a key)."""
    if isinstance(command, JobCommand):
        return command.job_id
    if isinstance(command, EnqueueJob) and command.idempotency_key is not None:
        return idempotent_job_id(command.customer_id, command.idempotency_key)
    return None
