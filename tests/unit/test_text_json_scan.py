"""The text rule checked on a command's JSON encoding (issue 19): ``validated`` scans the
encoded command once and walks its fields only when the scan finds a possible refusal.
The scan may raise a false alarm (the walk then passes) but never misses a refused code
point, so the commands accepted and the errors named are the same as the walk's."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.commands import EnqueueJob, validated
from ledger.errors import InvalidText
from ledger.text import first_unstorable, json_is_storable

REFUSED = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ufffe", "\uffff"]
KEPT = ["\t", "\n", "\r", "\x7f", "\x85", "\u2028", "\ufffd", "\U0001f600", "\\", '"', "/"]


@given(st.text())
def test_the_scan_never_misses_a_refused_code_point(text: str) -> None:
    try:
        encoded = msgspec.json.encode(text)
    except UnicodeEncodeError:  # a lone surrogate: the encoder refuses it itself
        assert first_unstorable(text) is not None
        return
    if first_unstorable(text) is not None:
        assert not json_is_storable(encoded)


@pytest.mark.parametrize("char", REFUSED)
def test_each_refused_code_point_is_found_in_keys_and_values(char: str) -> None:
    for value in ({"a": [1, {"b": f"x{char}"}]}, {f"k{char}": 1}, f"\\{char}", f"\\\\{char}"):
        assert not json_is_storable(msgspec.json.encode(value))


@pytest.mark.parametrize("char", KEPT)
def test_storable_text_passes_the_scan(char: str) -> None:
    assert json_is_storable(msgspec.json.encode({"a": [f"x{char}y"], f"k{char}": None}))


def test_a_false_alarm_is_resolved_by_the_walk() -> None:
    command = EnqueueJob(customer_id="acme", payload={"path": "C:\\users\\bob"})
    assert not json_is_storable(msgspec.json.encode(command))  # "\\u" of "\\users"
    assert validated(command) == command


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"a": {"b": "x\x01"}}, "payload.a"),
        ({"k\x0c": 1}, "payload"),
        (["\ud800"], "payload[0]"),
        ("\uffff", "payload"),
    ],
)
def test_a_refused_text_is_named_as_before(payload: Any, field: str) -> None:
    with pytest.raises(InvalidText) as raised:
        validated(EnqueueJob(customer_id="acme", payload=payload))
    assert field in str(raised.value)
