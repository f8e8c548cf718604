"""Issue 13: arbitrary text through the whole pipeline, on SQLite and PostgreSQL.

Hypothesis puts any text (every Unicode category, control characters, lone surrogates,
non-characters, very long strings) in each string field a client or a handler can produce,
over real HTTP with the projection runner feeding every view. Each request is answered
with a clear 4xx or accepted; an accepted text comes back byte for byte from the views;
every view reaches the head of the log with no error; a fresh rebuild of every view equals
it (``projections verify``) and the audit passes. ``LEDGER_PROPERTY_EXAMPLES`` runs it
larger (CI: 50 examples a store, plus the known poisons of every field).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.http.wiring import build_http
from adapters.service.audit import run_audit
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from ledger.text import check_value, is_storable, normalise
from projections.rebuild import verify
from projections.registry import VIEWS
from tests.support.http import RunningApi, projections_running, serve_in_thread, wait_for
from tests.support.pg import PostgresServer

EXAMPLES = int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "50"))

ODD = [0x0, 0x1, 0x8, 0xB, 0x1B, 0x1F, 0x7F, 0x85, 0xA0, 0xAD, 0x200B, 0x2028, 0xD800,
       0xDBFF, 0xDC00, 0xDFFF, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0x1F600, 0xE0001, 0x10FFFF]
CHARS = st.one_of(
    st.characters(codec=None, categories=None),  # every category, surrogates included
    st.sampled_from([chr(c) for c in ODD]),
)
SHORT = st.text(CHARS, min_size=1, max_size=40)
TEXT = st.one_of(
    SHORT,
    st.builds(lambda part, times: part * times, SHORT, st.integers(50, 400)),  # long
)
FIELDS = ["customer_id", "queue", "idempotency_key", "payload_key", "payload_value",
          "worker_id", "error", "handler_error", "result"]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Container, RunningApi]]:
    database_url = None
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"job_ledger_prop_{uuid4().hex[:12]}"
        database_url = server.create_database(name)
    container = build(Settings(
        ledger_data_dir=tmp_path_factory.mktemp("prop"), database_url=database_url,
        retry_base_delay_seconds=0, retry_max_delay_seconds=0,
    ))
    parts = build_http(container)
    parts.access.open_allowed = True
    try:
        with projections_running(container, poll=0.02), serve_in_thread(parts) as running:
            yield container, running
    finally:
        container.close()
        if database_url is not None:
            server.drop_database(name)


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST ``body`` as JSON escaped to ASCII, so any text (a lone surrogate too) is sent."""
    raw = json.dumps(body, ensure_ascii=True).encode()
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    return response


def refused(response: httpx.Response, text: str) -> bool:
    """True when the request was refused with a clear 4xx; only an unstorable or
    out-of-bounds text may be refused."""
    if response.status_code < 300:
        return False
    assert response.status_code in (400, 413, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"]
    return True


def run_one(client: httpx.Client, field: str, text: str) -> None:
    """One job's life with ``text`` in ``field``; checks the answers and the round trip."""
    enqueue: dict[str, Any] = {"customer_id": "acme", "max_attempts": 1, "payload": {"k": 1}}
    if field in ("customer_id", "queue", "idempotency_key"):
        enqueue[field] = text
    elif field == "payload_key":
        enqueue["payload"] = {text: [1, {text: text}]}
    elif field == "payload_value":
        enqueue["payload"] = {"k": [text, {"deep": text}]}
    response = post(client, "/jobs", enqueue)
    if refused(response, text):
        return
    check_value("enqueue", enqueue)  # accepted: it was storable
    job_id = response.json()["job_id"]
    worker = text if field == "worker_id" else "w1"
    response = post(client, f"/jobs/{job_id}/claim", {"worker_id": worker})
    if refused(response, text):
        return
    report: dict[str, Any] = {"worker_id": worker, "attempt": 1}
    if field == "result":
        response = post(client, f"/jobs/{job_id}/complete", {**report, "result": {text: text}})
    elif field == "handler_error":  # what the worker SDK sends for a handler's exception
        error, changed = normalise(f"RuntimeError: {text}")
        body = {**report, "error": error, "error_normalised": changed}
        response = post(client, f"/jobs/{job_id}/fail", body)
        assert response.status_code == 200, response.text  # never refused: normalised
    else:
        error = text if field == "error" else "plain"
        response = post(client, f"/jobs/{job_id}/fail", {**report, "error": error})
    if refused(response, text):
        return
    expected = {"customer_id": enqueue["customer_id"], "worker_id": worker,
                "queue": enqueue.get("queue", "default")}
    if field == "error":
        expected["last_error"] = text
    ended = {"completed", "dead_lettered"}  # max_attempts=1: the report ends the job

    def shown_ended() -> dict[str, Any] | None:  # one read: attempt and status together
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        return job if job.get("attempt") == 1 and job.get("status") in ended else None

    wait_for(lambda: shown_ended() is not None)
    shown = shown_ended()
    assert shown is not None  # a view never goes back
    assert {k: shown.get(k) for k in expected} == expected  # byte for byte through the view


def views_at_head(container: Container) -> bool:
    store = container.backend.open_views()
    try:
        at = store.head()
        tracked = {t.view: t for t in store.all_tracking()}
    finally:
        store.close()
    for name in VIEWS:
        assert not tracked[name].error, f"{name}: {tracked[name].error}"
    return all(tracked[name].position == at for name in VIEWS)


def test_any_text_is_refused_clearly_or_flows_through_every_view(
    served: tuple[Container, RunningApi],
) -> None:
    container, running = served

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(field=st.sampled_from(FIELDS), text=TEXT)
    @example(field="error", text="boom\x00x")  # issue 13's poison event
    @example(field="handler_error", text="x\x00\ud800" + "y" * 3000)
    @example(field="payload_value", text="\x00")
    @example(field="result", text="\x00")
    def life(field: str, text: str) -> None:
        with httpx.Client(base_url=running.base_url, timeout=10) as client:
            run_one(client, field, text)

    life()
    wait_for(lambda: views_at_head(container), timeout=30)
    live, work = container.backend.open_views(), container.backend.open_views()
    try:
        for view in VIEWS.values():
            result = verify(live, work, view)
            assert result.equal, f"{view.name}: {result}"
    finally:
        live.close()
        work.close()
    report = run_audit(
        container.backend.open_views, list(VIEWS.values()), now=utc_now,
        alert_grace=timedelta(hours=1), check_dispatch=False,
    )
    assert report.ok, report.to_dict()


@settings(max_examples=EXAMPLES * 20, deadline=None)
@given(TEXT, st.integers(1, 3000))
def test_normalised_text_is_storable_capped_and_unchanged_when_it_was(
    text: str, limit: int
) -> None:
    fixed, changed = normalise(text, limit)
    assert is_storable(fixed)
    assert len(fixed) <= limit
    fixed.encode("utf-8")
    assert changed == (fixed != text)
    if is_storable(text) and len(text) <= limit:
        assert not changed
