"""``ledger serve``'s archive round records a segment only when it is worth one (ADR 110,
segments that do not pile up): ``ARCHIVE_MIN_EVENTS`` events would move, or the oldest
job due ended ``ARCHIVE_MAX_WAIT`` before the cut."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from adapters.service.archive_policy import archive_due, archive_round
from adapters.service.backend import backend_for
from adapters.service.settings import Settings
from ledger.errors import ConfigurationError
from tests.integration.test_archive import hot_events, seeded
from tests.support.projection_env import Backend

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def _segments(backend: Backend) -> int:
    tables = backend_for(backend.settings).archive()
    try:
        return tables.summary().segments
    finally:
        tables.close()


def test_a_round_with_few_events_due_records_nothing_and_one_with_enough_records_one(
    backend: Backend,
) -> None:
    workload = seeded(backend)
    settings = replace(backend.settings, archive_older_than=DAY)
    now = workload.now + DAY + HOUR  # the jobs ended about an hour before the cut
    due = archive_due(backend_for(settings), now - DAY)
    assert due.jobs > 0
    assert 0 < due.events < settings.archive_min_events
    hot = hot_events(backend)
    for minutes in range(3):  # rounds 5 minutes apart under the default 50,000
        line = archive_round(backend_for(settings), settings, DAY,
                             now + timedelta(minutes=5 * minutes))
        assert "nothing recorded" in line
    assert _segments(backend) == 0
    assert hot_events(backend) == hot
    enough = replace(settings, archive_min_events=due.events)
    line = archive_round(backend_for(enough), enough, DAY, now)
    assert "1 segment(s)" in line
    assert _segments(backend) == 1
    assert hot_events(backend) < hot


def test_a_quiet_ledger_still_archives_once_the_oldest_job_waited_a_day(
    backend: Backend,
) -> None:
    workload = seeded(backend)
    settings = replace(backend.settings, archive_older_than=DAY)
    assert "nothing recorded" in archive_round(
        backend_for(settings), settings, DAY, workload.now + 2 * DAY - HOUR)
    line = archive_round(backend_for(settings), settings, DAY, workload.now + 2 * DAY + HOUR)
    assert "1 segment(s)" in line
    assert _segments(backend) == 1


@pytest.mark.parametrize(("name", "raw"), [
    ("ARCHIVE_MIN_EVENTS", "0"), ("ARCHIVE_MIN_EVENTS", "lots"),
    ("ARCHIVE_MAX_WAIT", "0d"), ("ARCHIVE_MAX_WAIT", "daily"),
])
def test_bad_archive_settings_are_refused_naming_the_setting(name: str, raw: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: raw})


def test_the_settings_default_to_50000_events_or_a_day() -> None:
    settings = Settings.from_env({"ARCHIVE_MIN_EVENTS": "1000", "ARCHIVE_MAX_WAIT": "12h"})
    assert (settings.archive_min_events, settings.archive_max_wait) == (1000, 12 * HOUR)
    assert (Settings().archive_min_events, Settings().archive_max_wait) == (50_000, DAY)
