"""Validating a batch of commands: each field shared by many commands is checked once.

A bulk action sends a thousand commands that differ only in ``job_id`` (``CancelJob``
with the same ``actor``, ``reason`` and ``action_id``); the scheduler a thousand
``ReleaseJob``. :func:`validate_all` checks the first command of each shape with
:func:`~ledger.commands.validated` (the text rule and the types' constraints, as for any
command) and gives the others of that shape the checked fields of the first and their own
``job_id``: the same command ``validated`` would return, without checking the same texts
and constraints again. A command with a value that is not a plain scalar (a payload, a
result) or a ``job_id`` that is not a ``UUID`` is validated on its own.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from ledger.commands import Command, JobCommand, validated
from ledger.errors import InvalidCommand
from ledger.reserved_shape import TAG
from ledger.text import json_is_storable

_C = TypeVar("_C", bound=Command)
_SCALARS = (str, int, float, bool, type(None), UUID, datetime)
"""Values whose check depends only on their type and value (hashable, immutable)."""


def shape_of(command: Command) -> Hashable | None:
    """The command's type and every field but ``job_id`` with its value's type (``1``
    and ``True`` are different shapes), or ``None`` when it must be checked alone."""
    key: list[object] = [type(command)]
    for name in command.__struct_fields__:
        value = getattr(command, name)
        if name == "job_id" and isinstance(command, JobCommand):
            if type(value) is not UUID:
                return None
            continue
        if not isinstance(value, _SCALARS):
            return None
        key.append((name, type(value), value))
    return tuple(key)


_LIST_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def validated_together(commands: Sequence[_C]) -> list[_C] | None:
    """Commands of one type validated as one list (issue 19, ADR 185): the list encoded,
    scanned for the text rule and decoded in three calls, where :func:`validated` makes
    three per command; each element is what ``validated`` returns for it. ``None`` when
    the types differ or any command would be refused (the caller checks them one by one,
    which names the field)."""
    kind = type(commands[0]) if commands else None
    if kind is None or any(type(c) is not kind for c in commands):
        return None
    decoder = _LIST_DECODERS.get(kind)
    if decoder is None:
        decoder = _LIST_DECODERS[kind] = msgspec.json.Decoder(list[kind])  # type: ignore[valid-type]
    try:
        encoded = msgspec.json.encode(commands)
        if not json_is_storable(encoded) or TAG in encoded:
            return None
        together: list[_C] = decoder.decode(encoded)
    except (TypeError, ValueError, msgspec.MsgspecError):
        return None
    return together


def validate_all(commands: Sequence[_C]) -> list[_C | InvalidCommand]:
    """Each command as :func:`~ledger.commands.validated` returns it, or its error."""
    if len(commands) > 1 and (together := validated_together(commands)) is not None:
        return list(together)
    checked: dict[Hashable, Command] = {}
    out: list[_C | InvalidCommand] = []
    for command in commands:
        shape = shape_of(command)
        template = None if shape is None else checked.get(shape)
        if template is not None:
            if isinstance(command, JobCommand):
                template = msgspec.structs.replace(template, job_id=command.job_id)
            out.append(template)  # type: ignore[arg-type]  # the same type as command
            continue
        try:
            valid = validated(command)
        except InvalidCommand as error:
            out.append(error)
            continue
        if shape is not None:
            checked[shape] = valid
        out.append(valid)
    return out
