"""API keys: format, hashing, verification, scope; the API's settings and open mode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.http.problems import status_of
from adapters.http.wiring import HttpSettings, is_loopback, open_allowed
from adapters.memory.keys import MemoryKeyStore
from adapters.service.backend import backend_for
from adapters.service.keys import KeyVerifier
from adapters.service.settings import Settings
from ledger.access import KEY_PATTERN, OPEN, Principal, Role, UnknownKey, hash_key, new_key
from ledger.errors import (
    AttemptSuperseded,
    ConfigurationError,
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    LedgerError,
    UnknownAttempt,
)

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_a_new_key_is_random_and_only_its_hash_is_kept() -> None:
    key, record = new_key(Role.WORKER, "acme", "fleet", NOW)
    other, _ = new_key(Role.WORKER, "acme", "fleet", NOW)
    assert key != other
    match = KEY_PATTERN.match(key)
    assert match is not None
    assert match["id"] == record.key_id
    assert record.key_hash == hash_key(key)
    assert key not in repr(record)


def test_the_verifier_accepts_good_keys_only() -> None:
    store = MemoryKeyStore()
    key, record = new_key(Role.SERVICE, None, None, NOW)
    store.add(record)
    clock = [0.0]
    verifier = KeyVerifier(store, ttl=5, clock=lambda: clock[0])
    assert verifier.verify(key) == Principal(Role.SERVICE, None, record.key_id)
    forged = f"jl_{record.key_id}_{'A' * 43}"
    for bad in (forged, "jl_x", "", key + "x", f"jl_000000000000_{'A' * 43}"):
        assert verifier.verify(bad) is None, bad
    store.revoke(record.key_id, NOW)
    assert verifier.cached(key) is not None  # remembered for the ttl
    clock[0] = 6.0
    assert verifier.cached(key) is None
    assert verifier.verify(key) is None
    with pytest.raises(UnknownKey):
        store.revoke("nope", NOW)


def test_keys_exist_is_remembered_briefly() -> None:
    store = MemoryKeyStore()
    clock = [0.0]
    verifier = KeyVerifier(store, ttl=5, clock=lambda: clock[0])
    assert not verifier.keys_exist()
    store.add(new_key(Role.ADMIN, None, None, NOW)[1])
    assert not verifier.keys_exist()
    clock[0] = 5.1
    assert verifier.keys_exist()


def test_roles_and_customer_scope() -> None:
    worker = Principal(Role.WORKER, "acme", "k")
    assert worker.may(frozenset({Role.WORKER}))
    assert not worker.may(frozenset({Role.SERVICE}))
    assert Principal(Role.ADMIN, None, "k").may(frozenset({Role.STAFF}))
    assert worker.sees_customer("acme")
    assert not worker.sees_customer("globex")
    assert OPEN.sees_customer("anyone")


@pytest.mark.parametrize(
    ("host", "database_url", "expected"),
    [
        ("127.0.0.1", None, True),
        ("::1", None, True),
        ("localhost", None, True),
        ("127.0.0.2", None, True),
        ("0.0.0.0", None, False),
        ("192.0.2.7", None, False),
        ("api.example", None, False),
        ("127.0.0.1", "postgresql://db/ledger", False),
    ],
)
def test_open_only_on_the_embedded_default_on_loopback(
    host: str, database_url: str | None, expected: bool
) -> None:
    settings = Settings(database_url=database_url)
    assert open_allowed(backend_for(settings), host) is expected
    assert is_loopback(host) is (expected or database_url is not None)


def test_http_settings_from_the_environment() -> None:
    assert HttpSettings.from_env({}) == HttpSettings()
    assert HttpSettings.from_env({"RATE_LIMIT_WORKER_PER_MINUTE": "12"}).worker_per_minute == 12
    with pytest.raises(ConfigurationError, match="HEALTH_STALE_UNHEALTHY"):
        HttpSettings.from_env({"HEALTH_STALE_UNHEALTHY": "lots"})
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_SERVICE_PER_MINUTE"):
        HttpSettings.from_env({"RATE_LIMIT_SERVICE_PER_MINUTE": "0"})


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (JobNotFound("j"), 404),
        (IllegalTransition("j", "completed", "claim"), 409),
        (AttemptSuperseded("j", 1, 2, "in_progress"), 409),
        (UnknownAttempt("j", 9, 1), 409),
        (IdempotencyConflict("acme", "k"), 422),
    ],
)
def test_named_errors_map_to_status_codes(error: LedgerError, status: int) -> None:
    assert status_of(error) == status
