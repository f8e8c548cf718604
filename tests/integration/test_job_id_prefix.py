"""Jobs found by the start of their id in ``job_status``, on SQLite and PostgreSQL, with a
range on the key that the primary key's index answers."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.postgres.store import QUERIES as POSTGRES_QUERIES
from adapters.service.bootstrap import utc_now
from adapters.sqlite.store import QUERIES as SQLITE_QUERIES
from ledger.commands import EnqueueJob
from projections.queries.job_status import JobStatusQueries, id_range
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from tests.support.projection_env import Backend


def test_prefixes_find_exactly_the_jobs_whose_id_starts_so(backend: Backend) -> None:
    ledger = backend.ledger().ledger
    results = ledger.execute_batch([EnqueueJob(customer_id="acme") for _ in range(40)],
                                   utc_now())
    ids = sorted(str(r.job_id) for r in results if not isinstance(r, Exception))
    assert len(ids) == 40
    store = backend.store()
    catch_up_unfed(store, [VIEWS["job_status"]])
    queries = JobStatusQueries(store)
    for job_id in ids[:10]:
        for size in (1, 2, 8, 9, 13, 36):
            prefix = job_id[:size]
            expected = [i for i in ids if i.startswith(prefix)][:3]
            found = [str(i) for i in queries.with_id_prefix(prefix, limit=3)]
            assert found == expected, prefix
        compact = job_id.replace("-", "")
        assert [str(i) for i in queries.with_id_prefix(compact[:12].upper(), limit=2)] == \
            [i for i in ids if i.replace("-", "").startswith(compact[:12])][:2]
    assert queries.with_id_prefix("f" * 32) == []


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 33, "12 34", "g1"])
def test_a_prefix_is_hex_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="hex"):
        id_range(bad)


def test_the_prefix_query_searches_the_primary_key(backend: Backend) -> None:
    backend.ledger()  # the tables
    store = backend.store()
    conn: Any = store.conn  # type: ignore[attr-defined]
    low, high = id_range("a3b5")
    if backend.name == "sqlite":
        (statement,) = SQLITE_QUERIES["job_status.with_id_prefix"]
        plan = conn.execute("EXPLAIN QUERY PLAN " + statement,
                            {"low": str(low), "high": str(high), "limit": 2}).fetchall()
        text = " ".join(str(row[-1]) for row in plan)
        assert "SEARCH job_status USING" in text, text
        assert "job_id>? AND job_id<?" in text, text
    else:
        (statement,) = POSTGRES_QUERIES["job_status.with_id_prefix"]
        with conn.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            plan = cur.execute("EXPLAIN " + statement,
                               {"low": low, "high": high, "limit": 2}).fetchall()
            conn.rollback()
        text = " ".join(str(row[0]) for row in plan)
        assert "job_status_pkey" in text, text
        assert "job_id >=" in text, text
        assert "job_id <=" in text, text
