"""Where the log is cut for "as of a moment": a time or a position (ADR 90).

As of a time T means the log cut at the greatest position whose event was recorded at or
before T. Commit order (the position) is the truth; recorded times may be slightly out of
order (two writers can commit in the opposite order of their timestamps), so the cut is
found by a binary search over positions on the recorded times (O(log n) one-event reads)
followed by a forward scan of one page, which moves the cut to the last event of that
page recorded at or before T. The cut may then include an event stamped a few
milliseconds after T, never one committed after the cut. ``@POSITION`` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from ledger.errors import LedgerError
from projections.events import Body, RawRow, parse_time
from projections.store import ViewStore

SCAN_PAGE = 1000
"""Events scanned forward after the binary search (out-of-order recorded times)."""

_stamp = msgspec.json.Decoder(Body)


class InvalidMoment(LedgerError):
    """An "as of" moment is an ISO-8601 time with a zone (2026-12-01T03:00Z) or @POSITION."""

    code = "invalid_moment"

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        super().__init__(
            f"as of {text!r}: {reason} (give an ISO-8601 time with a zone such as "
            "2026-12-01T03:00Z, or @POSITION)"
        )


class BeyondHead(LedgerError):
    """The position is beyond the last event of the log."""

    code = "beyond_head"

    def __init__(self, position: int, head: int) -> None:
        self.position = position
        self.head = head
        super().__init__(f"position {position} is beyond the head of the log ({head})")


@dataclass(frozen=True, slots=True)
class Moment:
    """A parsed "as of": exactly one of ``position`` and ``time`` is set."""

    text: str
    position: int | None = None
    time: datetime | None = None


def parse_moment(text: str) -> Moment:
    """``@123`` (a position >= 0) or an ISO-8601 time with a zone (``Z`` or an offset)."""
    raw = text.strip()
    if raw.startswith("@"):
        digits = raw[1:]
        if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
            raise InvalidMoment(text, "a position is @ and at most 18 digits")
        return Moment(text, position=int(digits))
    if not raw or not raw.isascii() or len(raw) > 40:
        raise InvalidMoment(text, "not a time")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidMoment(text, "not a time") from None
    if value.tzinfo is None:
        raise InvalidMoment(text, "a time needs a zone (Z or +HH:MM)")
    return Moment(text, time=parse_time(value.isoformat()))


def recorded_at(raw: RawRow) -> datetime:
    """When the event of a raw row was recorded (its body's timestamp)."""
    return _stamp.decode(raw[4]).timestamp.at


def position_at(store: ViewStore, when: datetime, head: int | None = None) -> int:
    """The greatest position whose event was recorded at or before ``when`` (0 if none).

    ``head`` bounds the search (the head of the log when not given).
    """
    top = store.head() if head is None else head
    low, high = 0, top + 1  # low: a cut at or before when; high: no answer at or after it
    while high - low > 1:
        middle = (low + high) // 2
        page = store.read_events(middle - 1, 1, high - 1)
        if page and recorded_at(page[0]) <= when:
            low = page[0][0]
        else:
            high = middle  # no event in [middle, found) or the found one is after when
    for raw in store.read_events(low, SCAN_PAGE, top):
        if recorded_at(raw) <= when:
            low = raw[0]
    return low


def resolve(store: ViewStore, moment: Moment) -> int:
    """The log position a moment names; :class:`BeyondHead` for a position past the head."""
    head = store.head()
    if moment.position is not None:
        if moment.position > head:
            raise BeyondHead(moment.position, head)
        return moment.position
    assert moment.time is not None
    return position_at(store, moment.time, head)
