"""API keys in memory (tests)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ledger.access import KeyRecord, UnknownKey


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
