"""The CLI's one check of names (adapters/cli/options.py): the rule of ledger/text.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from adapters.cli.options import MAX_NAME, name_refusal, names


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a\x00b", "it contains U+0000 (a control character)"),
        ("a\tb", "it contains U+0009 (a control character)"),
        ("a\nb", "it contains U+000A (a control character)"),
        ("a\udcffb", "it contains U+DCFF (a lone surrogate)"),
        ("a\uffffb", "it contains U+FFFF (a non-character)"),
        ("", "it is empty"),
        ("x" * (MAX_NAME + 1), f"it is longer than {MAX_NAME} characters"),
    ],
)
def test_names_the_rule_refuses_are_usage_errors(text: str, reason: str) -> None:
    assert name_refusal(text) == reason
    with pytest.raises(typer.BadParameter, match=re.escape(f"not a name: {reason}")):
        names(text)
    with pytest.raises(typer.BadParameter):
        names(["fine", text])  # a repeatable option: every value is checked


@pytest.mark.parametrize("value", [None, "acme", "Zürich 🚀 co", "x" * MAX_NAME, ["a", "b"]])
def test_names_the_rule_accepts_pass_through(value: Any) -> None:
    assert names(value) == value
