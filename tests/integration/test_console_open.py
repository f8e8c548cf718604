"""The console on the embedded default with no API key: open on loopback (as the API is),
still with a CSRF token on every form, and not open to a request naming another host
(a rebinding of some site's name to 127.0.0.1)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.job import Job
from tests.integration.test_console_pages import dead_letter
from tests.support.console import ConsoleApi, console_api, csrf_of
from tests.support.http import wait_for
from tests.support.projection_env import make_backend


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleApi]:
    backend = make_backend(request, tmp_path)
    try:
        with console_api(backend, keys=False) as running:
            yield running
    finally:
        backend.close()


def test_open_on_loopback_with_csrf_and_a_kept_secret(api: ConsoleApi, tmp_path: Path) -> None:
    job_id = dead_letter(api)
    secret = tmp_path / "data" / "console-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    with api.client() as client:
        wait_for(lambda: "dead_lettered" in client.get(f"/ui/jobs/{job_id}").text)
        page = client.get(f"/ui/jobs/{job_id}")
        assert "open (loopback, no keys)" in page.text
        assert client.post(f"/ui/jobs/{job_id}/retry", data={}).status_code == 403
        done = client.post(f"/ui/jobs/{job_id}/retry", data={"csrf": csrf_of(page.text)})
        assert done.status_code == 303
    last = api.container.ledger.history(job_id)[-1]
    assert isinstance(last, Job.Redriven)
    assert last.actor == "ui:open"
    with api.client() as rebound:
        answer = rebound.get("/ui/jobs", headers={"host": "evil.example:8000"})
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login")
