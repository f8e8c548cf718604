"""Shared fixtures: one real PostgreSQL per session, a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from tests.support.pg import PostgresServer, start_postgres
from tests.support.projection_env import BACKENDS, Backend, make_backend


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


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The service wired on each backend the views run on (SQLite, PostgreSQL), with
    short policy thresholds (``tests/support/projection_env.py``)."""
    made = make_backend(request, tmp_path)
    yield made
    made.close()


import typing  # noqa: E402

if typing.TYPE_CHECKING:  # the fixtures below import moto lazily
    from tests.support.sqs import SqsQueues


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's SQS server on 127.0.0.1 (a free port) for the session: its endpoint URL."""
    from tests.support.sqs import start_moto

    with start_moto() as endpoint:
        yield endpoint


@pytest.fixture
def sqs_queues(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> SqsQueues:
    """A fresh SQS queue and its dead-letter queue (maxReceiveCount 3, visibility 1 s) on
    moto, with the standard AWS variables pointing at it and nothing else."""
    from tests.support.sqs import CREDENTIALS, REGION, create_queues

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return create_queues(moto_endpoint)
