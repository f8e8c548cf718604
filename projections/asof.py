"""Where the log is cut for "as of a moment": a time or a position (ADR 90).

As of a time T means the log cut at the greatest position whose event was recorded at or
before T. Commit order (the position) is the truth; recorded times may be slightly out of
order (two writers can commit in the opposite order of their timestamps), so the cut is
found by a binary search over positions on the recorded times (O(log n) one-event reads)
followed by a forward scan, which moves the cut to the last event recorded at or before T
among the next events up to the first one stamped more than the skew bound after T (one
page at most). The cut may then include an event stamped a few milliseconds after T,
never one committed after the cut. ``@POSITION`` is exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from ledger.errors import LedgerError
from projections.checkpoints import Checkpoint, CheckpointCorrupt, CheckpointStore, load
from projections.events import Body, RawRow, decode_page, parse_time
from projections.memory import MemoryView
from projections.model import View, ViewError
from projections.store import ViewStore

log = logging.getLogger(__name__)

SCAN_PAGE = 1000
"""Events scanned forward after the binary search (out-of-order recorded times), at most."""
SCAN_STEP = 200
"""The first step of that scan (enough when the log is quiet); the rest of the page next."""
SKEW = timedelta(seconds=10)
"""How much earlier than its commit an event may be stamped: the longest append
transaction (its lock timeout, ADR 90). The forward scan stops past ``when + SKEW``."""
FOLD_PAGE = 20_000

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
            raise InvalidMoment(text, "a position is @ followed by at most 18 digits")
        return Moment(text, position=int(digits))
    if not raw or not raw.isascii() or len(raw) > 40:
        raise InvalidMoment(text, "not a time")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidMoment(text, "not a time") from None
    if value.tzinfo is None:
        raise InvalidMoment(text, "a time needs a zone (Z or +HH:MM)")
    try:
        return Moment(text, time=parse_time(value.isoformat()))
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable UTC time
        raise InvalidMoment(text, "out of the representable range of times") from None


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
    return _scan_forward(store, low, when, top)


def _plus_skew(when: datetime) -> datetime:
    """``when + SKEW``, clamped at the last representable time (9999-12-31T23:59:59Z
    is a valid moment: the whole log)."""
    last = datetime.max.replace(tzinfo=when.tzinfo)
    return when + SKEW if when <= last - SKEW else last


def _scan_forward(store: ViewStore, low: int, when: datetime, top: int) -> int:
    """The last event after ``low`` recorded at or before ``when``, among the next
    :data:`SCAN_PAGE` events at most (read in two steps, the first short), stopped at the
    first event recorded more than :data:`SKEW` after ``when``: every event committed
    after that one was stamped at most :data:`SKEW` before its commit, so after ``when``."""
    after, late = low, _plus_skew(when)
    for size in (SCAN_STEP, SCAN_PAGE - SCAN_STEP):
        page = store.read_events(after, size, top)
        for raw in page:
            at = recorded_at(raw)
            if at > late:
                return low
            if at <= when:
                low = raw[0]
        if len(page) < size:
            return low
        after = page[-1][0]
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


@dataclass
class ViewAsOf:
    """A view folded up to ``position``: from ``checkpoint`` (or from 0) plus the log."""

    memory: MemoryView
    position: int
    checkpoint: Checkpoint | None
    folded: int
    """Events read after the checkpoint."""
    refused: list[CheckpointCorrupt] = field(default_factory=list)


def view_as_of(
    views: ViewStore,
    checkpoints: CheckpointStore | None,
    view: View,
    position: int,
    page_size: int = FOLD_PAGE,
) -> ViewAsOf:
    """The view as of ``position``: the newest valid checkpoint at or before it, loaded in
    memory, plus the log's events after it folded by the view's handlers. Never writes.
    A refused checkpoint is logged and the next older one (then position 0) is used."""
    memory, used, refused = MemoryView(view), None, []
    candidates = checkpoints.list(view.name) if checkpoints is not None else []
    for checkpoint in candidates:
        if checkpoint.position > position or checkpoints is None:
            continue
        try:
            memory, used = load(checkpoints, view, checkpoint), checkpoint
            break
        except CheckpointCorrupt as error:
            log.warning("%s; falling back to an older one", error)
            refused.append(error)
    after, folded = memory.position, 0
    while after < position:
        page = views.read_events(after, page_size, position)
        if not page:
            break
        events, not_understood = decode_page(page)
        memory.feed(events)
        if not_understood is not None:
            raise ViewError.not_understood(view.name, not_understood)
        after, folded = page[-1][0], folded + len(page)
    memory.position = position
    return ViewAsOf(memory, position, used, folded, refused)
