"""The PostgreSQL test fixtures give each test a real, fresh, empty database."""

from __future__ import annotations

from typing import Any, get_args
from uuid import uuid4

import psycopg
import pytest

from tests.support.pg import LocalCluster, PostgresServer, ShutdownMode

pytestmark = pytest.mark.postgres

USER_TABLES = (
    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
)


def scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_a_fresh_empty_database(postgres_url: str, run: int) -> None:
    # Run 2 proves that the table run 1 created and committed did not leak.
    with psycopg.connect(postgres_url) as conn:
        assert scalar(conn, "SELECT current_database()").startswith("job_ledger_test_")
        assert scalar(conn, USER_TABLES) == 0
        conn.execute("CREATE TABLE leftover (run int NOT NULL)")
        conn.execute("INSERT INTO leftover VALUES (%s)", (run,))


def test_drop_database_ends_open_connections(postgres_server: PostgresServer) -> None:
    name = f"job_ledger_test_{uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    with psycopg.connect(url) as straggler:
        postgres_server.drop_database(name)
        with pytest.raises(psycopg.OperationalError):
            straggler.execute("SELECT 1")
    with psycopg.connect(postgres_server.url) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        assert found.fetchone() is None


def test_local_cluster_is_durable_and_roomy(postgres_server: PostgresServer) -> None:
    if not isinstance(postgres_server, LocalCluster):
        pytest.skip(f"settings are the server's own: {postgres_server!r}")
    with psycopg.connect(postgres_server.url) as conn:
        assert scalar(conn, "SHOW fsync") == "on"
        assert scalar(conn, "SHOW synchronous_commit") == "on"
        assert scalar(conn, "SHOW max_connections") == "200"


@pytest.mark.parametrize("mode", get_args(ShutdownMode)[1:])
def test_committed_rows_survive_a_restart(
    postgres_server: PostgresServer, postgres_url: str, mode: ShutdownMode
) -> None:
    if not postgres_server.supports_restart:
        pytest.skip(f"cannot restart {postgres_server!r}")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE jobs (id int PRIMARY KEY)")
        conn.execute("INSERT INTO jobs VALUES (1)")
    with psycopg.connect(postgres_url, autocommit=True) as before:
        postgres_server.restart(mode)
        with pytest.raises(psycopg.OperationalError):
            before.execute("SELECT 1")
    with psycopg.connect(postgres_url) as after:
        assert scalar(after, "SELECT array_agg(id) FROM jobs") == [1]
