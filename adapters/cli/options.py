"""Text options that reach an event or a query, checked at the CLI boundary.

A customer, a queue, an actor, a worker id, a key's id or label: each is a *name*, held to
the one rule the commands and the HTTP API use (:data:`ledger.text.NAME_PATTERN`: storable
text without tab, newline or carriage return, 1 to :data:`MAX_NAME` characters). Give such
an option ``callback=names`` and a bad value is a usage error before anything runs: one
line naming the option and why (never echoing the text), exit status 2.
"""

from __future__ import annotations

from typing import Final, TypeVar

import typer

from ledger.text import name_problem

MAX_NAME: Final = 200
"""The longest name (the commands' ``Name``)."""

T = TypeVar("T", str, list[str], None)


def name_refusal(text: str) -> str | None:
    """Why ``text`` cannot be a name, or ``None`` when it can."""
    if not text:
        return "it is empty"
    if len(text) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    return name_problem(text)


def names(value: T) -> T:
    """The typer callback of a name option (one value, a repeatable list, or unset):
    :class:`typer.BadParameter` unless every value is a name."""
    texts: list[str] = [] if value is None else [value] if isinstance(value, str) else value
    for text in texts:
        refusal = name_refusal(text)
        if refusal is not None:
            raise typer.BadParameter(f"not a name: {refusal}")
    return value
