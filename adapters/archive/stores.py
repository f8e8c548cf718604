"""Where segments are kept: a directory (the embedded default) or S3 (``s3.py``).

A store writes a whole segment at once and reads it whole or a byte range of it. A put
replaces an object of the same name: a segment no manifest row records yet (left by a
crash between its write and the archive's transaction) is overwritten by the next run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from ledger.errors import StoreError


class SegmentMissing(StoreError):
    """A segment the manifest records is not in the segment store."""

    code = "segment_missing"


class SegmentStore(Protocol):
    """A place for segment files."""

    def describe(self) -> str: ...

    def put(self, name: str, data: bytes) -> None:
        """Write the segment durably (replacing one of the same name)."""
        ...

    def get(self, name: str) -> bytes:
        """The whole segment; :class:`SegmentMissing` if absent."""
        ...

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the segment from ``offset``."""
        ...

    def close(self) -> None: ...


class DirectoryStore:
    """Segments as files in one directory, each written to a temporary name, fsynced and
    renamed into place (then the directory fsynced)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"directory {self.root}"

    def put(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path, temporary = self.root / name, self.root / f".{name}.tmp"
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def get(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            raise SegmentMissing(f"segment {name} is not in {self.describe()}") from None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        try:
            with open(self.root / name, "rb") as file:
                file.seek(offset)
                return file.read(length)
        except FileNotFoundError:
            raise SegmentMissing(f"segment {name} is not in {self.describe()}") from None

    def close(self) -> None:
        return None
