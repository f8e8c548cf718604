"""The console's part of the API's wiring: its session secret and what it reads with."""

from __future__ import annotations

from datetime import timedelta

from adapters.http.access import Access
from adapters.http.console.session import Console, secret_from
from adapters.service.audit import ALERT_MARGIN_SECONDS
from adapters.service.bootstrap import Container
from adapters.service.view_rebuild import Rebuilds
from ledger.access import KeyStore


def console_of(
    container: Container, keys: KeyStore, access: Access, secret: str | None
) -> Console:
    """The console over ``container``: sessions signed with ``secret`` (``CONSOLE_SECRET``),
    else on the embedded default with a secret kept in its data directory."""
    settings = container.settings
    data_dir = None if settings.uses_postgres else settings.ledger_data_dir
    grace = (settings.alert_group_wait_seconds + settings.dlq_check_interval_seconds
             + ALERT_MARGIN_SECONDS)
    return Console(
        secret=secret_from(secret, data_dir), keys=keys, access=access,
        open_views=container.backend.open_views, stale_threshold=settings.stale_threshold,
        alert_grace=timedelta(seconds=grace),
        rebuilds=Rebuilds(container.backend, settings.checkpoint_keep),
    )
