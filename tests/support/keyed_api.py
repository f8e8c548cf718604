"""A real HTTP API on a test backend with one key of each role: ``staff``, ``admin``,
``acme`` (a service key scoped to the customer ``acme``) and ``worker``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import Container, utc_now
from ledger.access import Role, new_key
from tests.support.http import projections_running, serve_in_thread
from tests.support.log import recorded_head
from tests.support.projection_env import make_backend


@dataclass
class Api:
    container: Container
    http: httpx.Client
    keys: dict[str, tuple[str, str]]
    """name -> (key, key id)"""

    def as_(self, name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[name][0]}"}

    def head(self) -> int:
        return recorded_head(self.container.ledger.recorder)


@contextmanager
def keyed_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The API served in a thread with the projections running, on the backend
    ``request.param`` names; closed on exit."""
    backend = make_backend(request, tmp_path)
    container = backend.ledger()
    store = container.backend.key_store()
    keys = {}
    for name, role, customer in [("staff", Role.STAFF, None), ("admin", Role.ADMIN, None),
                                 ("acme", Role.SERVICE, "acme"), ("worker", Role.WORKER, None)]:
        secret, record = new_key(role, customer, None, utc_now())
        store.add(record)
        keys[name] = (secret, record.key_id)
    try:
        with projections_running(container), serve_in_thread(build_http(container)) as running, \
                httpx.Client(base_url=running.base_url, timeout=60) as http:
            yield Api(container, http, keys)
    finally:
        backend.close()
