"""Cron schedules over HTTP (ADR 130) on SQLite and PostgreSQL: staff and admin keys add,
pause, resume and remove them (the actor is the key), other keys are refused, bad input is
a 4xx problem naming what is wrong with nothing appended, and ``/health`` and
``/metrics`` show them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.schedule import Schedule, schedule_id
from tests.support.http import wait_for
from tests.support.keyed_api import Api, keyed_api
from tests.support.projection_env import BACKENDS

DAILY = {"name": "daily-report", "cron": "30 2 * * *", "queue": "reports",
         "timezone": "Europe/Paris", "payload": {"kind": "daily"}, "missed": "skip"}


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    with keyed_api(request, tmp_path) as running:
        yield running


def test_staff_add_pause_resume_and_remove_a_schedule_as_themselves(api: Api) -> None:
    added = api.http.post("/schedules", json={**DAILY, "reason": "finance"},
                          headers=api.as_("staff"))
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["cron"], body["timezone"], body["paused"]) == ("30 2 * * *", "Europe/Paris", False)
    assert body["next_tick"] is not None
    again = api.http.post("/schedules", json=DAILY, headers=api.as_("admin"))
    assert (again.status_code, again.json()["code"]) == (409, "schedule_exists")
    paused = api.http.post("/schedules/daily-report/pause", json={"reason": "audit"},
                           headers=api.as_("admin"))
    assert paused.json()["paused"] is True
    assert api.http.post("/schedules/daily-report/resume", json={},
                         headers=api.as_("staff")).json()["paused"] is False
    events = list(api.container.ledger.events.get(schedule_id("daily-report")))
    staff, admin = (f"api:key:{api.keys[k][1]}:{k}" for k in ("staff", "admin"))
    assert [(type(e).__name__, e.actor, e.reason) for e in events] == [  # type: ignore[attr-defined]
        ("Added", staff, "finance"), ("Paused", admin, "audit"), ("Resumed", staff, None),
    ]

    def listed() -> bool:
        rows = api.http.get("/schedules", headers=api.as_("staff")).json()
        return [(r["name"], r["state"], r["payload"]) for r in rows] == [
            ("daily-report", "active", {"kind": "daily"})
        ]

    wait_for(listed, timeout=30)
    removed = api.http.post("/schedules/daily-report/remove", json={"reason": "done"},
                            headers=api.as_("staff"))
    assert removed.json()["removed"] is True
    gone = api.http.post("/schedules/daily-report/pause", json={}, headers=api.as_("staff"))
    assert (gone.status_code, gone.json()["code"]) == (404, "schedule_not_found")
    assert isinstance(api.container.ledger.repository.get(schedule_id("daily-report")), Schedule)


@pytest.mark.parametrize("who", ["acme", "worker", None])
def test_other_keys_may_not_see_or_change_schedules(api: Api, who: str | None) -> None:
    headers = api.as_(who) if who else {}
    head = api.head()
    assert api.http.post("/schedules", json=DAILY, headers=headers).status_code in (401, 403)
    assert api.http.get("/schedules", headers=headers).status_code in (401, 403)
    assert api.head() == head


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"cron": "61 * * * *"}, 422, "cron"),
        ({"cron": "* * * * * *"}, 422, "five are needed"),
        ({"timezone": "Mars/Olympus_Mons"}, 422, "timezone"),
        ({"timezone": "../../../etc/passwd"}, 422, "timezone"),
        ({"name": "bad\nname"}, 422, "name"),
        ({"name": "nul\u0000"}, 422, "name"),
        ({"queue": "no spaces"}, 422, "queue"),
        ({"payload": {"k": "x" * 70_000}}, 422, "payload"),
        ({"payload": {"k": "\u0001"}}, 422, "payload"),
        ({"missed": "sometimes"}, 400, "missed"),
        ({"priority": 1000}, 400, "priority"),
        ({"surprise": 1}, 400, "surprise"),
    ],
)
def test_bad_schedules_are_refused_naming_the_part_and_append_nothing(
    api: Api, change: dict[str, object], status: int, words: str
) -> None:
    head = api.head()
    answer = api.http.post("/schedules", json={**DAILY, **change}, headers=api.as_("staff"))
    assert answer.status_code in (status, 400, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert words in answer.text
    assert api.head() == head


def test_health_and_metrics_show_the_schedules(api: Api) -> None:
    for name in ("a", "b"):
        assert api.http.post("/schedules", json={**DAILY, "name": name},
                             headers=api.as_("staff")).status_code == 201
    api.http.post("/schedules/b/pause", json={}, headers=api.as_("staff"))

    def shown() -> bool:
        health = api.http.get("/health").json()
        return bool(health["schedules"]["count"] == 2 and health["schedules"]["paused"] == 1)

    wait_for(shown, timeout=30)
    health = api.http.get("/health").json()["schedules"]
    assert health["next_tick"] is not None
    metrics = api.http.get("/metrics", headers=api.as_("staff")).text
    assert 'jobledger_schedules{state="paused"} 1.0' in metrics
    assert "jobledger_schedule_last_tick_late_seconds" in metrics


def test_the_schedules_routes_are_in_the_openapi_document(api: Api) -> None:
    paths = api.http.get("/schema/openapi.json").json()["paths"]
    assert {"/schedules", "/schedules/{name}/pause", "/schedules/{name}/resume",
            "/schedules/{name}/remove"} <= set(paths)
    assert "ScheduleRequest" in str(paths["/schedules"]["post"])
