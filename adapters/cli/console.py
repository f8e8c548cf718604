"""The consoles every ``ledger`` command prints with, and how a table shows a value.

On a terminal, rich fits output to the terminal's width. Piped into a file or another
program there is no width to fit: rich would assume 80 columns and fold names, ids and
commands across lines. There, unless ``COLUMNS`` says otherwise, lines are as long as
their content (tables keep their natural width), so ``grep`` and copy-paste see whole ids
(ADR 85). Scripts should still prefer ``--json``, which every table has.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.markup import escape

UNWRAPPED = 10_000
"""The width piped output gets: wide enough that nothing the CLI prints wraps."""


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A console for stdout (or stderr): the terminal's width, or unwrapped when piped."""
    console = Console(stderr=stderr, quiet=quiet, emoji=False)  # api:key:... stays text
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return Console(stderr=stderr, quiet=quiet, width=UNWRAPPED, emoji=False)


def cell(value: Any) -> str:
    """A value as a table cell: nothing for a missing value (never the text ``None``),
    markup escaped (a client's reason or name is shown as written, never interpreted)."""
    return "" if value is None else escape(str(value))
