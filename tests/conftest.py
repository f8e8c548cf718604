"""Shared fixtures: one real PostgreSQL per session, a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from tests.support.pg import PostgresServer, start_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started on first use."""
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> Iterator[str]:
    """The name of an empty database that each test's database is copied from."""
    name = f"job_ledger_template_{uuid4().hex[:12]}"
    postgres_server.create_database(name)
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    name = f"job_ledger_test_{uuid4().hex[:12]}"
    url = postgres_server.create_database(name, template=postgres_template)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest) -> str:
    """Each store a contract test runs on: in-memory fake, SQLite, PostgreSQL."""
    return str(request.param)


@pytest.fixture
def store_url(store: str, request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL URL when the store is PostgreSQL (a fresh database), else None."""
    if store != "postgres":
        return None
    return str(request.getfixturevalue("postgres_url"))
