"""A limiter's tally subject (a key's customer id, a key id, a client address) is not a
client's text to refuse, so it is made a name before its RequestTally.Recorded is
appended (issue 13): otherwise a NUL in it stops the rate-limit view on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import msgspec
import pytest

from adapters.http.ratelimit import Limiter, Preset
from ledger.commands import Name
from ledger.tally import RequestTally, TallyCounter
from ledger.text import REPLACEMENT, name_problem

NOW = datetime(2027, 1, 15, 12, 0, 30, tzinfo=UTC)
LATER = datetime(2027, 1, 15, 12, 5, tzinfo=UTC)


def recorded(tally: RequestTally) -> RequestTally.Recorded:
    (event,) = tally.collect_events()
    assert isinstance(event, RequestTally.Recorded)
    return event


def assert_storable_name(subject: str) -> None:
    assert name_problem(subject) is None
    assert msgspec.convert(subject, Name) == subject  # the commands' own Name type


@pytest.mark.parametrize(
    ("subject", "stored"),
    [
        ("acme\x00corp", f"acme{REPLACEMENT}corp"),
        ("ip:\ud800", f"ip:{REPLACEMENT}"),
        ("a\tb\nc\rd", f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}d"),
        ("no\ufffebad\uffff", f"no{REPLACEMENT}bad{REPLACEMENT}"),
        ("", REPLACEMENT),
        ("x" * 300, "x" * 200),
        ("Zürich 🚀 co", "Zürich 🚀 co"),
    ],
)
def test_a_subject_is_made_a_name_before_its_tally_is_recorded(
    subject: str, stored: str
) -> None:
    counter = TallyCounter(reporter="r")
    counter.count(subject, "service", admitted=True, at=NOW)
    counter.count(subject, "service", admitted=False, at=NOW)

    (tally,) = counter.flush(LATER)

    event = recorded(tally)
    assert event.subject == stored
    assert_storable_name(event.subject)
    assert (event.admitted, event.refused) == (1, 1)


def test_a_restored_tally_keeps_its_normalised_subject() -> None:
    counter = TallyCounter(reporter="r")
    counter.count("a\x00b", "auth", admitted=True, at=NOW)
    first = counter.flush(LATER)
    counter.restore(first)

    (again,) = counter.flush(LATER)

    assert again.id == first[0].id
    assert_storable_name(recorded(again).subject)


def test_the_limiter_records_a_nul_in_a_client_subject_as_a_storable_tally() -> None:
    tallies = TallyCounter(reporter="r")
    limiter = Limiter(
        None, {"auth": Preset("auth", 5, 60)}, clock=NOW.timestamp, tallies=tallies
    )

    async def decide() -> None:
        async with limiter.running():
            await limiter.decide("auth", "ip:10.0.0.1\x00", "cust\x00omer")

    anyio.run(decide)

    (tally,) = tallies.flush(LATER)
    event = recorded(tally)
    assert event.subject == f"cust{REPLACEMENT}omer"
    assert_storable_name(event.subject)
