"""Where "as of" cuts the log: parsing moments, time -> position (ADR 90)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.asof import (
    SCAN_PAGE,
    SCAN_STEP,
    SKEW,
    BeyondHead,
    InvalidMoment,
    parse_moment,
    position_at,
    resolve,
)
from projections.events import RawRow

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class LogOnly:
    """The two calls position_at makes, over a list of (position, recorded time)."""

    def __init__(self, events: list[tuple[int, datetime]]) -> None:
        self.events = events
        self.reads = 0
        self.rows = 0

    def head(self) -> int:
        return self.events[-1][0] if self.events else 0

    def read_events(self, after: int, limit: int, upto: int | None = None) -> list[RawRow]:
        self.reads += 1
        top = self.head() if upto is None else upto
        page = [
            (p, "00000000-0000-0000-0000-000000000000", 1, "t", _state(at))
            for p, at in self.events if after < p <= top
        ][:limit]
        self.rows += len(page)
        return page


def _state(at: datetime) -> bytes:
    iso = at.isoformat()
    return b'{"timestamp": {"_type_": "datetime_iso", "_data_": "' + iso.encode() + b'"}}'


def _log(offsets_ms: list[int], gaps: list[int]) -> LogOnly:
    position, events = 0, []
    for index, offset in enumerate(offsets_ms):
        position += 1 + gaps[index % len(gaps)]
        events.append((position, T0 + timedelta(milliseconds=offset)))
    return LogOnly(events)


@given(
    st.lists(st.integers(0, 5), min_size=0, max_size=300),
    st.lists(st.integers(0, 3), min_size=1, max_size=5),
    st.integers(-10, 2000),
)
def test_ordered_times_cut_at_the_last_event_recorded_at_or_before(
    steps: list[int], gaps: list[int], probe: int
) -> None:
    offsets = [sum(steps[: i + 1]) for i in range(len(steps))]
    log = _log(offsets, gaps)
    when = T0 + timedelta(milliseconds=probe)
    expected = max((p for p, at in log.events if at <= when), default=0)
    assert position_at(log, when) == expected  # type: ignore[arg-type]


@given(
    st.lists(st.integers(0, 20), min_size=1, max_size=400),
    st.lists(st.integers(-15, 15), min_size=1, max_size=400),
    st.integers(0, 9000),
)
def test_out_of_order_times_cut_at_the_greatest_position_at_or_before(
    steps: list[int], jitter: list[int], probe: int
) -> None:
    """Recorded times out of commit order by less than a page of events: the cut is still
    the greatest position recorded at or before the time, so it may include an event
    stamped after it but never leaves out one committed before it and stamped before."""
    offsets = [sum(steps[: i + 1]) + jitter[i % len(jitter)] for i in range(len(steps))]
    log = _log(offsets, [0])
    when = T0 + timedelta(milliseconds=probe)
    expected = max((p for p, at in log.events if at <= when), default=0)
    assert position_at(log, when) == expected  # type: ignore[arg-type]


def test_the_search_reads_a_logarithmic_number_of_events() -> None:
    log = _log(list(range(100_000)), [0])
    assert position_at(log, T0 + timedelta(milliseconds=54_321)) == 54_322  # type: ignore[arg-type]
    assert log.reads <= 20


def test_the_forward_scan_stops_past_the_skew_bound() -> None:
    """Events a second apart: the scan after the binary search ends at the first event
    stamped more than SKEW after the time, not a whole page later."""
    log = _log([i * 1000 for i in range(5_000)], [0])
    assert position_at(log, T0 + timedelta(seconds=2_500)) == 2_501  # type: ignore[arg-type]
    assert log.rows < 20 + SCAN_STEP < SCAN_PAGE  # the search's one-event reads + one step


def test_the_forward_scan_finds_an_early_stamp_beyond_its_first_step() -> None:
    """Events 5 ms apart, one committed late with the earliest stamp: the scan's second
    step still reaches it, since every event between is within SKEW of the time."""
    offsets = [5 * (i + 1) for i in range(900)]
    offsets[699] = 0
    log = _log(offsets, [0])
    assert SCAN_STEP < 700 < SCAN_PAGE
    assert timedelta(milliseconds=5 * 900) < SKEW
    assert position_at(log, T0 + timedelta(milliseconds=1)) == 700  # type: ignore[arg-type]


def test_times_before_the_first_event_cut_at_zero_and_after_the_last_at_the_head() -> None:
    log = _log([10, 20, 30], [2])
    assert position_at(log, T0) == 0  # type: ignore[arg-type]
    assert position_at(log, T0 + timedelta(days=1)) == log.head()  # type: ignore[arg-type]
    assert position_at(LogOnly([]), T0) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "position", "time"),
    [
        ("@0", 0, None),
        ("@42", 42, None),
        ("2026-12-01T03:00Z", None, T0),
        ("2026-12-01T04:00:00+01:00", None, T0),
        (" 2026-12-01T03:00:00.000Z ", None, T0),
    ],
)
def test_moments_parse(text: str, position: int | None, time: datetime | None) -> None:
    moment = parse_moment(text)
    assert (moment.position, moment.time) == (position, time)


@pytest.mark.parametrize(
    "text",
    ["", "@", "@-1", "@1.5", "@ 3", "@" + "9" * 19, "@١٢", "2026-12-01T03:00", "2026-12-01",
     "yesterday", "-1", "2026-13-01T00:00Z", "x" * 100],
)
def test_odd_moments_are_refused(text: str) -> None:
    with pytest.raises(InvalidMoment):
        parse_moment(text)


def test_the_last_representable_time_is_the_whole_log() -> None:
    """9999-12-31T23:59:59Z is a valid moment: adding the skew bound to it must not
    overflow (it was a traceback in the CLI and a 500 in the console)."""
    log = _log([10, 20, 30], [0])
    assert position_at(log, parse_moment("9999-12-31T23:59:59.999999Z").time) == log.head()  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00+01:00"])
def test_times_that_overflow_utc_are_refused(text: str) -> None:
    with pytest.raises(InvalidMoment, match="representable"):
        parse_moment(text)


def test_a_position_beyond_the_head_is_refused() -> None:
    log = _log([1, 2, 3], [0])
    assert resolve(log, parse_moment("@3")) == 3  # type: ignore[arg-type]
    with pytest.raises(BeyondHead):
        resolve(log, parse_moment("@4"))  # type: ignore[arg-type]
