"""Dead letters: which messages of the transport's dead-letter queue the job accepts, and
when a dead letter can be redriven.

Pure: the job's status and attempt (and the message's) in; a named error out.
"""

from __future__ import annotations

from uuid import UUID

from ledger.errors import IllegalTransition
from ledger.status import Status


def check_queue_dead_letter(
    job_id: UUID, status: Status, attempt: int, message_attempt: int | None
) -> None:
    """Raise unless the transport giving up on this message dead-letters the job.

    ``message_attempt`` is the number of claims the job had when the message was sent.
    The job's current message was sent after ``attempt`` claims while it is pending,
    and after ``attempt - 1`` while it runs (the message its attempt was claimed from,
    which SQS gives up on when that attempt's workers keep crashing). A message sent
    before that is an old copy: the job was requeued and dispatched again since, and
    the ledger's attempt budget and stale policy decide its fate, so the old copy is
    refused rather than dead-lettering a job pending or running on a newer message.
    A job that has finished refuses every message.
    """
    if status.is_terminal:
        raise IllegalTransition(job_id, status, "dead-letter from the queue")
    current = attempt if status == Status.PENDING else attempt - 1
    if message_attempt is not None and message_attempt < current:
        raise IllegalTransition(
            job_id, status,
            f"dead-letter from an old message (sent after {message_attempt} claims; "
            f"the job was dispatched again after {current})",
        )


def check_redrive(job_id: UUID, status: Status, dead_letter_version: int | None) -> int:
    """The dead letter a redrive answers; raise unless the job is dead-lettered."""
    if status != Status.DEAD_LETTERED or dead_letter_version is None:
        raise IllegalTransition(job_id, status, "redrive")
    return dead_letter_version
