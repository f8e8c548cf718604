"""The one rule for text that enters the log (docs/adr/0060-storable-text.md).

A text is *storable* when every code point is a character of XML 1.0 (``Char``), which is
also exactly the set SQS accepts in a message body or attribute:

    U+0009, U+000A, U+000D, U+0020..U+D7FF, U+E000..U+FFFD, U+10000..U+10FFFF

This leaves out what breaks a store, a view or the transport: U+0000 (PostgreSQL's
``text`` and ``jsonb`` refuse it), the other C0 controls (SQS refuses them, terminals
obey them), lone surrogates (not encodable as UTF-8, so neither store nor a JSON encoder
takes them) and the non-characters U+FFFE and U+FFFF. Everything else, every plane and
every category, is kept byte for byte through the log and every view.

Two ways to apply it, chosen by where the text came from:

- :func:`check_value` refuses (:class:`InvalidText`, naming the field): for what a client
  sent and for every command the ledger executes, so no entry point can bypass it;
- :func:`normalise` repairs (each offending code point becomes U+FFFD, the text is capped)
  and says whether it changed anything: for what a handler's exception says, so a job
  never fails to fail because its error text was odd.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from ledger.errors import InvalidText

_UNSTORABLE: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_IN_A_NAME: Final = re.compile("[^\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPE_IN_JSON: Final = re.compile(rb"\\[ubf]")
"""An escape msgspec writes for a C0 control the rule refuses (``\\uXXXX``, ``\\b``,
``\\f``; tab, newline and carriage return are ``\\t \\n \\r``). It also matches an
escaped backslash followed by one of those letters: a false alarm costs only the walk."""
NAME_PATTERN: Final = "^[^\x00-\x1f]+$"
"""A name (a customer, a worker, an idempotency key, a path parameter) is storable text
without the three controls free text may hold (tab, newline, carriage return). The
commands' ``Name`` type checks this pattern when decoding; the storable part is checked
with every other text by :func:`check_value` (``invalid_text``, naming the field);
:func:`name_problem` checks both at once."""
REPLACEMENT: Final = "\ufffd"
MAX_NAME_CHARS: Final = 200
"""The longest name (the commands' ``Name``)."""
MAX_ERROR_CHARS: Final = 2000
"""The length :func:`normalise` caps a handler's error text to by default."""


def first_unstorable(text: str) -> int | None:
    """The index of the first code point the rule refuses, or ``None``."""
    found = _UNSTORABLE.search(text)
    return None if found is None else found.start()


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a name (:data:`NAME_PATTERN`), or ``None`` when it can."""
    found = _NOT_IN_A_NAME.search(text)
    if found is None:
        return None
    char = found.group()
    if char < "\x20":
        kind = "a control character"
    elif "\ud800" <= char <= "\udfff":
        kind = "a lone surrogate"
    else:
        kind = "a non-character"
    return f"it contains U+{ord(char):04X} ({kind})"


def check_text(field: str, text: str) -> None:
    """Raise :class:`InvalidText` naming ``field`` unless ``text`` is storable."""
    index = first_unstorable(text)
    if index is not None:
        raise InvalidText(field, index, ord(text[index]))


def json_is_storable(encoded: bytes) -> bool:
    """True when msgspec's JSON encoding of a value holds no code point the rule refuses:
    then :func:`check_value` passes on every text of the value. A few scans of the bytes
    instead of a walk of the value in Python; False says only that one may be there.
    Lone surrogates never get here (the encoder refuses them); U+FFFE and U+FFFF are
    their UTF-8 bytes."""
    if b"\xef\xbf\xbe" in encoded or b"\xef\xbf\xbf" in encoded:
        return False
    return b"\\" not in encoded or _ESCAPE_IN_JSON.search(encoded) is None


def check_value(field: str, value: Any) -> None:
    """Check every text in ``value`` (a string, or JSON at any depth: keys and values)."""
    for path, text in _texts(field, value):
        check_text(path, text)


def normalise(text: str, limit: int = MAX_ERROR_CHARS) -> tuple[str, bool]:
    """``text`` made storable and at most ``limit`` characters, and whether it changed."""
    repaired = _UNSTORABLE.sub(REPLACEMENT, text)
    if len(repaired) > limit:
        repaired = repaired[: max(0, limit - 1)] + "\u2026"
    return repaired, repaired != text


def normalise_name(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """``text`` made a name (:data:`NAME_PATTERN`, at most ``limit`` characters): each code
    point a name may not hold becomes U+FFFD, and an empty text is U+FFFD. For names the
    ledger derives rather than receives (a limiter's tally subject), never refused."""
    repaired = _NOT_IN_A_NAME.sub(REPLACEMENT, text)[:limit]
    return repaired or REPLACEMENT


def _texts(field: str, value: Any) -> Iterator[tuple[str, str]]:
    """Every string in ``value`` with its path (``payload.a[2]``; a key's path is its
    container's). Iterative, so a deep value cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                if isinstance(key, str):
                    yield path, key
                stack.append((f"{path}.{key}" if is_storable(str(key)) else path, inner))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
