"""Request tallies: the HTTP limiter's decisions, aggregated before they reach the log.

The limiter decides every request against its live counters (exact, shared, short-lived;
not event-sourced). What it admitted and refused is also history worth keeping, per
customer and minute, rebuildable like every other view. Appending one event per decision
would turn a flood of refused requests into a flood of writes, so decisions are counted
in memory by a :class:`TallyCounter` and appended as at most one
:class:`RequestTally` per (subject, preset, minute) per process, when the minute is over
(or on shutdown). Losing a process loses at most its open minutes' tallies: they are
statistics, not decisions (see docs/adr/0011-rate-limit-counters-split.md).

A subject (a key's customer id, a key id, a client address) is not a client's text to
refuse: it is made a name (:func:`ledger.text.normalise_name`) before it is counted or
recorded, so a tally never carries what a store or a view cannot hold
(docs/adr/0089-names-the-ledger-derives.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.text import normalise_name

TALLY_NAMESPACE = UUID("3b0e0c5e-8d7e-4f55-a1b4-6a1c0d1e2f30")
"""Namespace of the uuid5 ids of tallies: one flush of one reporter names each once."""

TALLY_WINDOW_SECONDS = 60
"""Tallies are kept per UTC minute."""


class RequestTally(Aggregate):
    """What one process's limiter admitted and refused for one subject in one minute."""

    class Recorded(Aggregate.Created):
        """A limiter reported its decisions for one subject, preset and window."""

        subject: str
        preset: str
        window_start: datetime
        window_seconds: int
        admitted: int
        refused: int
        reporter: str

    def __init__(  # noqa: PLR0917 - eventsourcing passes the Created event's fields by name
        self,
        subject: str,
        preset: str,
        window_start: datetime,
        window_seconds: int,
        admitted: int,
        refused: int,
        reporter: str,
    ) -> None:
        self.subject = subject
        self.preset = preset
        self.window_start = window_start
        self.window_seconds = window_seconds
        self.admitted = admitted
        self.refused = refused
        self.reporter = reporter

    @classmethod
    def record(
        cls,
        *,
        tally_id: UUID,
        subject: str,
        preset: str,
        window_start: datetime,
        window_seconds: int,
        admitted: int,
        refused: int,
        reporter: str,
        now: datetime,
    ) -> RequestTally:
        return cls._create(
            cls.Recorded,
            id=tally_id,
            timestamp=now,
            subject=normalise_name(subject),
            preset=preset,
            window_start=window_start,
            window_seconds=window_seconds,
            admitted=admitted,
            refused=refused,
            reporter=reporter,
        )


def window_start(at: datetime, seconds: int = TALLY_WINDOW_SECONDS) -> datetime:
    """The start of the UTC window of ``seconds`` that ``at`` falls in."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


@dataclass
class TallyCounter:
    """Counts limiter decisions in memory and hands them out as tallies to append.

    Not thread-safe: the limiter calls it from one event loop (or under its own lock).
    """

    reporter: str = field(default_factory=lambda: uuid.uuid4().hex)
    window_seconds: int = TALLY_WINDOW_SECONDS
    _counts: dict[tuple[str, str, datetime], list[int]] = field(default_factory=dict)
    _flushes: int = 0
    _unsaved: list[RequestTally] = field(default_factory=list)

    def count(
        self, subject: str, preset: str, *, admitted: bool, at: datetime, times: int = 1
    ) -> None:
        """Count ``times`` decisions of the limiter (under ``subject`` made a name)."""
        key = (normalise_name(subject), preset, window_start(at, self.window_seconds))
        tally = self._counts.get(key)
        if tally is None:
            tally = self._counts[key] = [0, 0]
        tally[0 if admitted else 1] += times

    @property
    def pending(self) -> int:
        """How many (subject, preset, window) tallies are waiting to be flushed."""
        return len(self._counts) + len(self._unsaved)

    def flush(self, now: datetime, *, everything: bool = False) -> list[RequestTally]:
        """The tallies of windows that ended by ``now`` (all of them if ``everything``).

        The caller saves them with ``ledger.save(*tallies)``. Ids are deterministic per
        (reporter, flush, key), so saving the same flush again conflicts instead of
        counting twice.
        """
        span = timedelta(seconds=self.window_seconds)
        due = [k for k in self._counts if everything or k[2] + span <= now]
        tallies, self._unsaved = self._unsaved, []
        if not due:
            return tallies
        self._flushes += 1
        for key in sorted(due):
            admitted, refused = self._counts.pop(key)
            subject, preset, start = key
            tally_id = uuid.uuid5(
                TALLY_NAMESPACE,
                f"{self.reporter}\x00{self._flushes}\x00{subject}\x00{preset}\x00"
                f"{start.isoformat()}",
            )
            tallies.append(
                RequestTally.record(
                    tally_id=tally_id, subject=subject, preset=preset, window_start=start,
                    window_seconds=self.window_seconds, admitted=admitted, refused=refused,
                    reporter=self.reporter, now=now,
                )
            )
        return tallies

    def restore(self, tallies: list[RequestTally]) -> None:
        """Hand back tallies whose save failed: the next flush returns them again.

        They keep their ids, so if the failed save had in fact committed, saving them
        again conflicts (the caller drops those) instead of counting them twice.
        """
        self._unsaved.extend(
            RequestTally.record(
                tally_id=t.id, subject=t.subject, preset=t.preset,
                window_start=t.window_start, window_seconds=t.window_seconds,
                admitted=t.admitted, refused=t.refused, reporter=t.reporter,
                now=t.created_on,
            )
            for t in tallies
        )
