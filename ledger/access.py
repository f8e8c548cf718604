"""API keys: roles, an optional customer scope, stored only as a hash.

A key looks like ``jl_<id>_<secret>``: ``id`` (12 hex digits) names the key in listings
and revocations, ``secret`` is 32 random bytes (URL-safe base64). The store keeps
``sha256(key)`` and never the key; with 256 random bits a fast hash is enough (nothing to
brute-force), and the comparison is constant-time (docs/adr/0032-api-keys.md).

The HTTP layer verifies keys through :class:`adapters.service.keys.KeyVerifier`, which
remembers verified keys for a few seconds so a busy worker's heartbeats do not each read
the store; a revocation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ledger.errors import LedgerError

KEY_PATTERN = re.compile(r"^jl_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")


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
