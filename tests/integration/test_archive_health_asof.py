"""``/health?as_of=`` after an archive (ADR 110): a moment before the archive's horizon is
refused with a reason (the hot log alone would fold a health without the archived jobs);
one after it is answered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.http.health_asof import HealthAsOf
from adapters.http.services import HealthSettings, ReadPool
from adapters.service.archive_replay import archive_horizon
from adapters.service.backend import backend_for
from projections.asof import InvalidMoment
from tests.integration.test_archive import archive, seeded
from tests.support.projection_env import Backend


def test_health_as_of_before_the_archive_is_refused_with_its_reason(backend: Backend) -> None:
    workload = seeded(backend)
    archive(backend, workload)
    db = backend_for(backend.settings)
    horizon = archive_horizon(db)
    assert horizon > 1
    pool = ReadPool(db.open_views, size=1)
    health = HealthAsOf(pool, db.checkpoints, HealthSettings(timedelta(minutes=1)),
                        lambda: archive_horizon(db))
    try:
        with pytest.raises(InvalidMoment, match="archive's horizon"):
            asyncio.run(health.body(f"@{horizon - 1}"))
        head = backend.store().head()
        assert asyncio.run(health.body(f"@{head}")).position == head
    finally:
        pool.close()
