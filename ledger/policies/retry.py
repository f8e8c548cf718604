"""The retry policy: after a failed or stalled attempt, requeue (after how long) or dead-letter.

Pure: the caller passes the clock and the random draw, so decisions are reproducible in
tests. :func:`next_step` is the one place that decides between a requeue and a dead
letter; the job model records its answer and the stale monitor reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from ledger.errors import JobNotDue


def attempts_exhausted(attempts_used: int, max_attempts: int) -> bool:
    """True when no attempt is left (``attempts_used`` counts the attempt that just ended)."""
    return attempts_used >= max_attempts


@dataclass(frozen=True, slots=True)
class Requeue:
    """Make the job pending again, claimable from ``not_before`` (``None``: at once)."""

    not_before: datetime | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Stop: ``exhausted`` when the attempts are used up, else the policy gave up on it."""

    exhausted: bool


NextStep = Requeue | DeadLetter


def check_due(job_id: UUID, not_before: datetime | None, now: datetime) -> None:
    """Raise :class:`JobNotDue` while a requeued job waits out its delay."""
    if not_before is not None and now < not_before:
        raise JobNotDue(job_id, not_before.isoformat())


def next_step(
    attempts_used: int, max_attempts: int, delay: timedelta | None, now: datetime
) -> NextStep:
    """What follows an attempt that ended without success at ``now``.

    ``delay`` is the retry policy's answer (:meth:`RetryPolicy.delay`); ``None`` gives up.
    A job with attempts left and a delay is requeued, claimable after the delay (at once
    for a zero delay); otherwise it is dead-lettered.
    """
    exhausted = attempts_exhausted(attempts_used, max_attempts)
    if exhausted or delay is None:
        return DeadLetter(exhausted=exhausted)
    return Requeue(not_before=now + delay if delay > timedelta(0) else None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter between half and the whole delay."""

    base_delay_seconds: float = 10.0
    max_delay_seconds: float = 3600.0

    def delay(self, attempts_used: int, max_attempts: int, draw: float) -> timedelta | None:
        """The delay before the next attempt, or ``None`` when attempts are used up.

        ``attempts_used`` counts the attempt that just ended; ``draw`` is uniform in
        ``[0, 1)``. The n-th retry waits ``base * 2**(n-1)``, capped at the maximum,
        scaled into ``[50%, 100%]`` by the draw so that a burst of failures spreads out.
        """
        if attempts_exhausted(attempts_used, max_attempts):
            return None
        exponent = max(attempts_used - 1, 0)
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2.0**exponent)
        return timedelta(seconds=ceiling * (0.5 + 0.5 * draw))
