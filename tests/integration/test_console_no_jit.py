"""The views' sessions on PostgreSQL never JIT-compile (ADR 170). At 1,000,000 jobs the
console's error-text filter (ADR 141) is estimated at about 900,000 (a third of the 10,000
distinct texts, each with its jobs), past ``jit_above_cost``, and its compile took 50 ms
for a query of 1.4 ms. Here the thresholds are set to 0, so any plan would compile: the
view session's plan has no JIT section, a plain session's has one (when the server has
JIT at all)."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from adapters.postgres.backend import EVENTS_TABLE
from adapters.postgres.store import QUERIES, PostgresViewStore
from adapters.service.bootstrap import build
from adapters.service.settings import Settings

PARAMS = {"after": None, "status": None, "customer_id": None, "queue": None, "since": None,
          "until": None, "limit": 51, "error_contains": "Timeout"}
ANY_PLAN_COMPILES = ("SET jit_above_cost = 0", "SET jit_inline_above_cost = 0",
                     "SET jit_optimize_above_cost = 0")


def plan(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    for setting in ANY_PLAN_COMPILES:
        conn.execute(setting)
    (statement,) = QUERIES["job_status.error_page"]
    row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", PARAMS).fetchone()
    assert row is not None
    found: dict[str, Any] = (json.loads(row[0]) if isinstance(row[0], str) else row[0])[0]
    return found


def test_a_view_session_does_not_jit_compile_the_error_filter(postgres_url: str) -> None:
    build(Settings.from_env({"DATABASE_URL": postgres_url})).close()  # the schema
    store = PostgresViewStore(postgres_url, EVENTS_TABLE)
    try:
        assert store.conn.execute("SHOW jit").fetchone() == ("off",)
        assert "JIT" not in plan(store.conn)
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as plain:
        available = plain.execute("SELECT pg_jit_available()").fetchone() == (True,)
        assert ("JIT" in plan(plain)) == available  # the thresholds do make plans compile
