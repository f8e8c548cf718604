"""Values the log would read back as something else: an object with exactly the keys
``_type_`` and ``_data_`` (ADR 186). Pure.

eventsourcing's JSON transcoder writes a UUID, a datetime or a Decimal inside an event as
``{"_type_": name, "_data_": text}`` and, reading any event, turns every object of exactly
those two keys back into the type it names. A payload or a result holding such an object
was stored as sent and then read back as a datetime (say), or, with a name the transcoder
does not know, not at all: the job could not be loaded, and a batch of claims that named
it failed for every job in it. :func:`check_untagged` refuses such a command with
:class:`~ledger.errors.ReservedShape`, naming the field.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import ReservedShape

TAG = b'"_type_"'
"""In a command's msgspec encoding wherever such an object may be (a false alarm costs a
walk of the command)."""
KEYS = frozenset({"_type_", "_data_"})


def check_untagged(command: Any) -> None:
    """Raise :class:`ReservedShape` naming the first field holding such an object."""
    for name in command.__struct_fields__:
        path = tagged_path(name, getattr(command, name))
        if path is not None:
            raise ReservedShape(path)


def tagged_path(field: str, value: Any) -> str | None:
    """The path of the first object of exactly the two keys in ``value``, or ``None``
    (walked with a stack: a payload may be deep)."""
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            if len(item) == len(KEYS) and item.keys() == KEYS:
                return path
            stack.extend((f"{path}.{key}", inner) for key, inner in reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
    return None
