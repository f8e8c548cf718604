"""A segment frame's second encoding: PostgreSQL's binary COPY output, stored as the server
wrote it (ADR 110, as-built notes).

``COPY (SELECT notification_id, originator_id::text, originator_version, topic, state ...
ORDER BY notification_id) TO STDOUT (FORMAT binary)`` gives each row as a field count and
length-prefixed fields (int8, text, int8, text, bytea). The archive on PostgreSQL
compresses those bytes as a frame without making a Python object per event; a reader
tells the encodings apart by the COPY signature at the start of the decompressed frame
(MessagePack frames never start with it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
FIELDS = 5
RawEvent = tuple[int, str, int, str, bytes]

_short = struct.Struct(">h").unpack_from
_int = struct.Struct(">i").unpack_from
_long = struct.Struct(">q").unpack_from


class CopyFrameError(ValueError):
    """The bytes are not a binary COPY of the archive's five columns."""


def _field(raw: bytes, at: int) -> tuple[bytes, int]:
    (length,) = _int(raw, at)
    end = at + 4 + length
    if length < 0 or end > len(raw):
        raise CopyFrameError("a field is null or runs past the frame")
    return raw[at + 4:end], end


def decode(raw: bytes, job: str | None = None) -> list[RawEvent]:
    """The rows of one frame's binary COPY output (only ``job``'s when given: the other
    rows' fields are skipped, not decoded)."""
    wanted = None if job is None else job.encode()
    if not raw.startswith(SIGNATURE):
        raise CopyFrameError("no COPY signature")
    try:
        (extension,) = _int(raw, len(SIGNATURE) + 4)
        at = len(SIGNATURE) + 8 + extension
        rows: list[RawEvent] = []
        names: dict[bytes, str] = {}
        while True:
            (count,) = _short(raw, at)
            at += 2
            if count == -1:
                break
            if count != FIELDS:
                raise CopyFrameError(f"a row of {count} fields")
            position, at = _field(raw, at)
            name, at = _field(raw, at)
            version, at = _field(raw, at)
            topic, at = _field(raw, at)
            state, at = _field(raw, at)
            if wanted is not None and name != wanted:
                continue
            job = names.get(name) or names.setdefault(name, name.decode())
            rows.append((_long(position)[0], job, _long(version)[0], topic.decode(), state))
    except (struct.error, UnicodeDecodeError) as error:
        raise CopyFrameError(f"truncated or not text: {error}") from None
    if at != len(raw):
        raise CopyFrameError("bytes after the COPY trailer")
    return rows


def encode(rows: Iterable[RawEvent]) -> bytes:
    """The binary COPY output PostgreSQL writes for ``rows`` (for tests and other stores)."""
    parts = [SIGNATURE, b"\x00\x00\x00\x00\x00\x00\x00\x00"]
    for position, job, version, topic, state in rows:
        parts.append(struct.pack(">h", FIELDS))
        for field in (position.to_bytes(8, "big", signed=True), job.encode(),
                      version.to_bytes(8, "big", signed=True), topic.encode(), state):
            parts += [struct.pack(">i", len(field)), field]
    parts.append(struct.pack(">h", -1))
    return b"".join(parts)
