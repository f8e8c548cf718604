"""Every archived event in log order, a frame at a time (ADR 112).

Segments overlap in log positions (a job archived later may have started earlier) and so
do the frames of one segment (a frame is a block of jobs). A plain merge of every frame
would decode them all first. Here a segment is opened (read and verified) only when the
merge reaches its first position, and a frame is decoded only when the merge reaches its
first event: the frames of a segment are in the order of their first events (jobs are
blocked in that order), so decoding a segment's next frame tells where it starts. What is
held at once is the frames whose events span the merge's position (the jobs running
then), one frame decoded ahead per open segment, and the open segments' compressed bytes:
bounded by the history's concurrency, not its length.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

RawRow = tuple[int, str, int, str, bytes]
"""(position, originator_id, version, topic, state)."""


class FramesOutOfOrder(ValueError):
    """A segment's frames are not in the order of their first events."""


@dataclass(frozen=True)
class Source:
    """One segment: its first position and how to open its frames (each frame's rows in
    position order, frames in the order of their first rows)."""

    first_position: int
    frames: Callable[[], Iterator[Sequence[RawRow]]]


class InOrder:
    """Every row of ``sources`` in position order, decoding frames only as needed
    (iterate it once); :attr:`peak` is the most rows held in decoded frames at once."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self.unopened = sorted(sources, key=lambda s: s.first_position, reverse=True)
        self.ahead: list[tuple[RawRow, int, Sequence[RawRow], Iterator[Sequence[RawRow]]]] = []
        self.active: list[tuple[RawRow, int, Iterator[RawRow], int]] = []
        self.order = itertools.count()
        self.peak = 0
        self.held = 0

    def _decode_next(self, frames: Iterator[Sequence[RawRow]]) -> None:
        for rows in frames:
            if rows:
                self.held += len(rows)
                self.peak = max(self.peak, self.held)
                heapq.heappush(self.ahead, (rows[0], next(self.order), rows, frames))
                return

    def _admit(self) -> None:
        """Open every segment and activate every frame that may hold a row at or before
        the least row known (active or decoded ahead)."""
        while True:
            known = [q[0][0] for q in (self.active, self.ahead) if q]
            least = min(known) if known else None
            if self.unopened and (least is None or self.unopened[-1].first_position <= least[0]):
                self._decode_next(self.unopened.pop().frames())
            elif self.ahead and least is not None and self.ahead[0][0] <= least:
                _, order, rows, frames = heapq.heappop(self.ahead)
                active = iter(rows)
                heapq.heappush(self.active, (next(active), order, active, len(rows)))
                self._decode_next(frames)
            else:
                return

    def __iter__(self) -> Iterator[RawRow]:
        last = -1
        while True:
            self._admit()
            if not self.active:
                return
            row, order, rest, size = self.active[0]
            if row[0] <= last:
                raise FramesOutOfOrder(f"position {row[0]} after {last}")
            last = row[0]
            following = next(rest, None)
            if following is None:
                heapq.heappop(self.active)
                self.held -= size  # the frame is released
            else:
                heapq.heapreplace(self.active, (following, order, rest, size))
            yield row
