"""API keys: roles, an optional customer scope, stored only as a hash.

A key looks like ``jl_<id>_<secret>``: ``id`` (12 hex digits) names the key in listings
and revocations, ``secret`` is 32 random bytes (URL-safe base64). The store keeps
``sha256(key)`` and never the key; with 256 random bits a fast hash is enough (nothing to
brute-force), and the comparison is constant-time (docs/adr/0032-api-keys.md).

The HTTP layer verifies keys through :class:`KeyVerifier`, which remembers verified keys
for a few seconds so a busy worker's heartbeats do not each read the store; a
revocation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ledger.errors import LedgerError

KEY_PATTERN = re.compile(r"^jl_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
VERIFIED_TTL_SECONDS = 5.0


class Role(StrEnum):
    """What a key may do. ``admin`` may call every endpoint."""

    WORKER = "worker"
    SERVICE = "service"
    STAFF = "staff"
    ADMIN = "admin"


class UnknownKey(LedgerError):
    """No API key has this id."""

    code = "unknown_key"

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"no API key with id {key_id!r}")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key (without the key itself)."""

    key_id: str
    key_hash: str
    role: Role
    customer_id: str | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a verified key, or anyone (the open embedded default)."""

    role: Role
    customer_id: str | None
    key_id: str | None
    """``None`` when no key was needed (open mode)."""

    def may(self, roles: frozenset[Role]) -> bool:
        return self.role is Role.ADMIN or self.role in roles

    def sees_customer(self, customer_id: str) -> bool:
        return self.customer_id is None or hmac.compare_digest(
            self.customer_id.encode(), customer_id.encode()
        )


OPEN = Principal(Role.ADMIN, None, None)
"""The principal of every request when the embedded default runs without keys."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(
    role: Role, customer_id: str | None, label: str | None, now: datetime
) -> tuple[str, KeyRecord]:
    """A fresh key and the record to store for it."""
    key_id = secrets.token_hex(6)
    key = f"jl_{key_id}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(key_id, hash_key(key), role, customer_id, label, now)
    return key, record


class KeyStore(Protocol):
    """Where key records live (the ledger's database)."""

    def add(self, record: KeyRecord) -> None: ...

    def get(self, key_id: str) -> KeyRecord | None: ...

    def list(self) -> list[KeyRecord]: ...

    def revoke(self, key_id: str, now: datetime) -> KeyRecord:
        """Revoke the key (again is fine); :class:`UnknownKey` if there is none."""
        ...

    def any_active(self) -> bool: ...


class MemoryKeyStore:
    """Keys in memory (tests)."""

    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}

    def add(self, record: KeyRecord) -> None:
        self._records[record.key_id] = record

    def get(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    def list(self) -> list[KeyRecord]:
        return sorted(self._records.values(), key=lambda r: (r.created_at, r.key_id))

    def revoke(self, key_id: str, now: datetime) -> KeyRecord:
        record = self._records.get(key_id)
        if record is None:
            raise UnknownKey(key_id)
        if record.revoked_at is None:
            record = self._records[key_id] = replace(record, revoked_at=now)
        return record

    def any_active(self) -> bool:
        return any(r.active for r in self._records.values())


class KeyVerifier:
    """Checks presented keys against the store, remembering good ones briefly.

    Thread-safe; :meth:`verify` reads the store (call it off the event loop) only for a
    key it has not verified in the last ``ttl`` seconds.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        ttl: float = VERIFIED_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._any_active: tuple[bool, float] | None = None
        self._lock = threading.Lock()

    def cached(self, key: str) -> Principal | None:
        """The principal of a key verified within ``ttl`` (no I/O), else ``None``."""
        entry = self._verified.get(hash_key(key))
        if entry is not None and entry[1] > self._clock():
            return entry[0]
        return None

    def verify(self, key: str) -> Principal | None:
        """The key's principal, or ``None`` for a malformed, unknown or revoked key."""
        digest = hash_key(key)
        entry = self._verified.get(digest)
        now = self._clock()
        if entry is not None and entry[1] > now:
            return entry[0]
        match = KEY_PATTERN.match(key)
        if match is None:
            return None
        record = self._store.get(match["id"])
        if record is None or not record.active:
            return None
        if not hmac.compare_digest(record.key_hash, digest):
            return None
        principal = Principal(record.role, record.customer_id, record.key_id)
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified = {k: v for k, v in self._verified.items() if v[1] > now}
            self._verified[digest] = (principal, now + self._ttl)
        return principal

    def keys_exist(self) -> bool:
        """Whether any active key exists (re-read at most every ``ttl`` seconds)."""
        now = self._clock()
        cached = self._any_active
        if cached is not None and cached[1] > now:
            return cached[0]
        exists = self._store.any_active()
        self._any_active = (exists, now + self._ttl)
        return exists
