"""Checking presented API keys against the key store, remembering good ones briefly."""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable

from ledger.access import KEY_PATTERN, KeyStore, Principal, hash_key

VERIFIED_TTL_SECONDS = 5.0


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
