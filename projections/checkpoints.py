"""View checkpoints: a stored copy of every table of one view at one log position (ADR 90).

A checkpoint is a row (view, position, generation, taken_at, row and byte counts, the
SHA-256 of its chunks' stored bytes in sequence order, the format version) and chunks of
up to :data:`CHUNK_ROWS` rows of one table each: ``[table name, rows]`` as msgspec's
MessagePack (rows as arrays in the table's declared column order), compressed with zstd.
Chunks are written first, each in its own transaction; the row is written last, which
makes the checkpoint visible (a crash leaves orphan chunks, deleted by the next take).

Every use verifies it: the chunks must hash to ``sha256``, decode to the view's declared
columns and add up to the row count, and the format version (a digest of the view's
declaration) must be today's; otherwise it is refused with :class:`CheckpointCorrupt`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, Protocol

import msgspec
import zstandard

from ledger.errors import LedgerError
from projections.memory import MemoryView
from projections.model import Column, Kind, Table, View
from projections.store import LIVE, ViewStore

CHUNK_ROWS = 10_000
TAKE_LOCK = "checkpoints:take"
"""Held while a checkpoint is taken: one take at a time, so orphans are really orphans."""
ENCODING = 1
"""Bumped when the chunk encoding changes (part of the format version)."""

_TYPES: dict[str, Any] = {
    "uuid": str, "text": str, "int": int, "float": float, "timestamp": datetime, "date": date,
}
_encode = msgspec.msgpack.Encoder().encode
_envelope = msgspec.msgpack.Decoder(tuple[str, msgspec.Raw])
_compress = zstandard.ZstdCompressor(level=3).compress


class CheckpointBusy(LedgerError):
    """Another checkpoint is being taken; try again shortly."""

    code = "checkpoint_busy"


class CheckpointCorrupt(LedgerError):
    """A checkpoint does not match its checksum or its view's declaration; it is refused."""

    code = "checkpoint_corrupt"

    def __init__(self, checkpoint: Checkpoint, reason: str) -> None:
        self.checkpoint = checkpoint
        self.reason = reason
        super().__init__(
            f"checkpoint {checkpoint.id} of view {checkpoint.view!r} at position "
            f"{checkpoint.position} refused: {reason}"
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint's row."""

    id: str
    view: str
    position: int
    generation: int
    taken_at: datetime
    row_count: int
    byte_count: int
    sha256: str
    format_version: str


class _Row(Protocol):
    def __getitem__(self, name: str, /) -> Any: ...


def checkpoint_params(checkpoint: Checkpoint) -> dict[str, Any]:
    """The checkpoint as the named parameters of a store's ``publish`` statement."""
    return {
        "id": checkpoint.id, "view": checkpoint.view, "position": checkpoint.position,
        "generation": checkpoint.generation, "taken_at": checkpoint.taken_at,
        "row_count": checkpoint.row_count, "byte_count": checkpoint.byte_count,
        "sha256": checkpoint.sha256, "format_version": checkpoint.format_version,
    }


def checkpoint_of(row: _Row, taken_at: datetime) -> Checkpoint:
    """A checkpoint from a row of a store's ``list`` statement (``taken_at`` as read by
    the driver, which may keep it as text)."""
    return Checkpoint(
        id=row["id"], view=row["view_name"], position=row["position"],
        generation=row["generation"], taken_at=taken_at, row_count=row["row_count"],
        byte_count=row["byte_count"], sha256=row["sha256"],
        format_version=row["format_version"],
    )


class CheckpointStore(Protocol):
    """Where checkpoints are kept (the ledger's database; one session, one thread)."""

    def write_chunk(self, checkpoint_id: str, seq: int, data: bytes) -> None:
        """Store one chunk, committed on its own."""
        ...

    def publish(self, checkpoint: Checkpoint) -> None:
        """Insert the checkpoint's row: it is visible from now on."""
        ...

    def list(self, view: str) -> list[Checkpoint]:
        """The view's checkpoints, newest position first."""
        ...

    def chunks(self, checkpoint_id: str) -> Iterator[bytes]:
        """The checkpoint's chunks in sequence order."""
        ...

    def delete(self, checkpoint_id: str) -> None:
        """Remove a checkpoint's row and chunks."""
        ...

    def delete_orphans(self) -> int:
        """Remove chunks whose checkpoint row was never written; how many."""
        ...

    def close(self) -> None: ...


@cache
def format_version(view: View) -> str:
    """A digest of the view's declaration and the encoding: a change voids old copies."""
    declaration = [
        (t.name, t.kind.value, t.key, [(c.name, c.type, c.nullable) for c in t.columns])
        for t in view.tables
    ]
    digest = hashlib.sha256(msgspec.json.encode([ENCODING, view.name, declaration]))
    return digest.hexdigest()[:16]


@cache
def _rows_decoder(table: Table) -> msgspec.msgpack.Decoder[Any]:
    def kind(column: Column) -> Any:
        base = _TYPES[column.type]
        return base | None if column.nullable else base

    row = tuple.__class_getitem__(tuple(kind(c) for c in table.columns))
    return msgspec.msgpack.Decoder(list[row])  # type: ignore[valid-type]


def _normalised(table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A stored row as the views fold it (SQLite keeps times and dates as text)."""
    out = list(row)
    for index, column in enumerate(table.columns):
        value = out[index]
        if isinstance(value, str) and column.type == "timestamp":
            out[index] = datetime.fromisoformat(value)
        elif isinstance(value, str) and column.type == "date":
            out[index] = date.fromisoformat(value)
    return tuple(out)


def encode_chunk(table: Table, rows: list[tuple[Any, ...]]) -> bytes:
    return _compress(_encode([table.name, rows]))


def decode_chunk(view: View, data: bytes) -> tuple[Table, list[tuple[Any, ...]]]:
    """A chunk's table and rows; ValueError or msgspec's errors when it does not decode."""
    name, raw = _envelope.decode(zstandard.ZstdDecompressor().decompress(data))
    table = view.table(name)
    return table, _rows_decoder(table).decode(raw)


def _chunks(views: ViewStore, view: View) -> Iterator[tuple[Table, list[tuple[Any, ...]]]]:
    for table in view.tables:
        batch: list[tuple[Any, ...]] = []
        for row in views.rows(table, LIVE):
            batch.append(_normalised(table, tuple(row)))
            if len(batch) == CHUNK_ROWS:
                yield table, batch
                batch = []
        if batch:
            yield table, batch


def take(
    views: ViewStore, store: CheckpointStore, view: View, taken_at: datetime
) -> Checkpoint:
    """Copy the live view and its position, read in one snapshot, into a new checkpoint;
    :class:`CheckpointBusy` while another take (any view, any process) runs."""
    if not views.try_lock(TAKE_LOCK):
        raise CheckpointBusy()
    try:
        return _take(views, store, view, taken_at)
    finally:
        views.unlock(TAKE_LOCK)


def _take(views: ViewStore, store: CheckpointStore, view: View, taken_at: datetime) -> Checkpoint:
    store.delete_orphans()
    checkpoint_id = str(uuid.uuid4())
    digest, rows, size, seq = hashlib.sha256(), 0, 0, 0
    with views.snapshot():
        tracking = views.tracking(view.name)
        for table, batch in _chunks(views, view):
            data = encode_chunk(table, batch)
            store.write_chunk(checkpoint_id, seq, data)
            digest.update(data)
            rows, size, seq = rows + len(batch), size + len(data), seq + 1
    checkpoint = Checkpoint(
        checkpoint_id, view.name, tracking.position, tracking.generation, taken_at, rows, size,
        digest.hexdigest(), format_version(view),
    )
    store.publish(checkpoint)
    return checkpoint


def load(store: CheckpointStore, view: View, checkpoint: Checkpoint) -> MemoryView:
    """The checkpoint as an in-memory view; :class:`CheckpointCorrupt` if it fails any check."""
    if checkpoint.format_version != format_version(view):
        raise CheckpointCorrupt(checkpoint, "the view's declaration changed since")
    memory = MemoryView(view)
    digest, rows = hashlib.sha256(), 0
    for data in store.chunks(checkpoint.id):
        digest.update(data)
        try:
            table, batch = decode_chunk(view, data)
        except (ValueError, KeyError, msgspec.DecodeError, zstandard.ZstdError) as error:
            raise CheckpointCorrupt(checkpoint, f"a chunk does not decode: {error}") from None
        _fill(memory, table, batch)
        rows += len(batch)
    if digest.hexdigest() != checkpoint.sha256:
        raise CheckpointCorrupt(checkpoint, "its chunks do not match its sha256")
    if rows != checkpoint.row_count:
        raise CheckpointCorrupt(checkpoint, f"{rows} rows, {checkpoint.row_count} recorded")
    memory.position = checkpoint.position
    return memory


def _fill(memory: MemoryView, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
    names, width = table.names, len(table.key)
    if table.kind is Kind.STATE:
        target = memory.rows[table.name]
        for row in rows:
            record = dict(zip(names, row, strict=True))
            target[table.key_of(record)] = record
    elif table.kind is Kind.COUNTER:
        counters = memory.counters[table.name]
        for row in rows:
            counters[tuple(row[:width])] = list(row[width:])
    else:
        memory.appended[table.name].extend(rows)


def prune(store: CheckpointStore, view: str, keep: int) -> list[str]:
    """Delete the view's checkpoints beyond the newest ``keep`` (at least one is kept)."""
    doomed = store.list(view)[max(keep, 1):]
    for checkpoint in doomed:
        store.delete(checkpoint.id)
    return [c.id for c in doomed]
