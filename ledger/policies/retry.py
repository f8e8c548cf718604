"""The retry policy: how long a failed or stalled attempt waits before the next one.

Pure: the caller passes the random draw, so decisions are reproducible in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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
        if attempts_used >= max_attempts:
            return None
        exponent = max(attempts_used - 1, 0)
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2.0**exponent)
        return timedelta(seconds=ceiling * (0.5 + 0.5 * draw))
