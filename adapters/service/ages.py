"""An age as people write it: ``30d``, ``12h``, ``90m``, ``45s`` (or several: ``1d12h``)."""

from __future__ import annotations

import re
from datetime import timedelta

from ledger.errors import ConfigurationError

_PART = re.compile(r"(\d{1,7})([dhms])")
LONGEST = timedelta(days=36_500)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_age(name: str, raw: str) -> timedelta:
    """``raw`` as a positive duration; :class:`ConfigurationError` naming ``name``."""
    text = raw.strip().lower()
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigurationError(name, raw, "expected an age such as 30d, 12h, 90m or 1d12h")
    age = sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())
    if age <= timedelta(0):
        raise ConfigurationError(name, raw, "must be longer than zero")
    if age > LONGEST:
        raise ConfigurationError(name, raw, "must be at most 100 years (36500d)")
    return age
