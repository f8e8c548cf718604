"""A real API with the console on 127.0.0.1, keys of each role, and a signed-in client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from adapters.http.wiring import build_http
from adapters.service.bootstrap import Container, utc_now
from ledger.access import Role, new_key
from tests.support.http import projections_running, serve_in_thread
from tests.support.log import recorded_head
from tests.support.projection_env import Backend

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ConsoleApi:
    container: Container
    base_url: str
    keys: dict[str, str]

    def head(self) -> int:
        return recorded_head(self.container.ledger.recorder)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60, follow_redirects=False)

    @contextmanager
    def signed_in(self, role: str) -> Iterator[httpx.Client]:
        """A client signed in with the key of ``role`` (through the sign-in form)."""
        with self.client() as client:
            token = csrf_of(client.get("/ui/login").text)
            answer = client.post("/ui/login", data={
                "csrf": token, "api_key": self.keys[role], "next": "/ui"})
            assert answer.status_code == 303, answer.text
            yield client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@contextmanager
def console_api(backend: Backend, *, keys: bool = True) -> Iterator[ConsoleApi]:
    container = backend.ledger()
    made: dict[str, str] = {}
    if keys:
        store = container.backend.key_store()
        for role in (Role.STAFF, Role.ADMIN, Role.SERVICE):
            secret, record = new_key(role, "acme" if role is Role.SERVICE else None, None,
                                     utc_now())
            store.add(record)
            made[str(role)] = secret
    with projections_running(container), serve_in_thread(build_http(container)) as running:
        yield ConsoleApi(container, running.base_url, made)


def data_dir(backend: Backend) -> Path:
    return backend.settings.ledger_data_dir
