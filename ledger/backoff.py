"""How a writer waits between tries after a version conflict.

Optimistic writes retry on a conflict. Retried at once, writers that contend for one
stream (claims and completions on a capped queue's aggregate, ADR 135) collide again in
step, and one that keeps losing runs out of tries while the others go on: a worker's
completion refused with ``ConcurrencyExhausted``. Each retry after the first waits a
random share of a window that doubles per try, 1 ms up to 50 ms ("full jitter"), so the
contenders spread out and every one gets a turn; an uncontended write never waits.

Pure: the wait itself (``time.sleep``) is given by the composition root; without one,
tries follow at once, as before.
"""

from __future__ import annotations

import random
from collections.abc import Callable

FIRST_WINDOW = 0.001
"""Seconds: the window of the second retry; each further retry doubles it."""

LAST_WINDOW = 0.05
"""Seconds: the widest window."""


class Backoff:
    """Waits before a retry: nothing before the first, then a random share of a window
    doubling from ``FIRST_WINDOW`` to ``LAST_WINDOW``."""

    def __init__(
        self, pause: Callable[[float], None] | None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._pause = pause
        self._draw = draw

    def window(self, tries: int) -> float:
        """The longest wait after ``tries`` failed tries (0 after the first)."""
        if tries <= 1:
            return 0.0
        return min(LAST_WINDOW, FIRST_WINDOW * (1 << (tries - 2)))

    def __call__(self, tries: int) -> None:
        """Wait before the next try, after ``tries`` failed ones."""
        window = self.window(tries)
        if self._pause is not None and window > 0:
            self._pause(self._draw() * window)
