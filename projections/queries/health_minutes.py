"""Reading ``health_minutes``: the counters of each minute of the last hours, zeros
where nothing happened (one key lookup per minute)."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from projections.health_minutes import HEALTH_MINUTES, MINUTE_COUNTERS, minute_of
from projections.store import LIVE, ViewStore

MAX_MINUTES = 24 * 60


class Minutes(msgspec.Struct, frozen=True):
    """Series for a chart: minute starts (unix seconds) and one list per counter."""

    minutes: list[int]
    names: list[str]
    values: list[list[int]]


def last_minutes(store: ViewStore, now: datetime, count: int) -> Minutes:
    """The ``count`` minutes up to ``now``'s, oldest first."""
    count = max(1, min(count, MAX_MINUTES))
    last = minute_of(now)
    keys = [(last - timedelta(minutes=count - 1 - i),) for i in range(count)]
    rows = store.load(HEALTH_MINUTES, LIVE, keys)
    found = {minute_of(_aware(key[0], now)): row for key, row in rows.items()}
    values = [[int(found[k[0]][name]) if k[0] in found else 0 for k in keys]
              for name in MINUTE_COUNTERS]
    return Minutes([int(k[0].timestamp()) for k in keys], list(MINUTE_COUNTERS), values)


def _aware(value: object, now: datetime) -> datetime:
    """A stored minute as a time in ``now``'s zone (SQLite hands back text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
