"""SQL kept in ``.sql`` files: named sections and numbered migrations, parsed once.

A file holds sections headed ``-- name: NAME``; a section is one or more statements, each
ending with ``;`` at the end of a line. Placeholders (``{table}``) are filled with
``psycopg.sql`` identifiers by the adapter that runs them, never by string formatting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_HEADER = re.compile(r"^-- name: *(?P<name>[\w.]+) *$", re.MULTILINE)
_MIGRATION = re.compile(r"^(?P<version>\d{4})_(?P<name>\w+)\.sql$")


def statements(text: str) -> list[str]:
    """The statements of a section (comment lines dropped), without their ``;``."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    body = "\n".join(lines)
    return [s.strip() for s in re.split(r";[ \t]*$", body, flags=re.MULTILINE) if s.strip()]


def load_sections(package: str, filename: str) -> dict[str, list[str]]:
    """Every ``-- name:`` section of ``package/filename`` as its list of statements."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    headers = list(_HEADER.finditer(text))
    sections: dict[str, list[str]] = {}
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        sections[header["name"]] = statements(text[header.end():end])
    return sections


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(package: str) -> list[Migration]:
    """The numbered migrations in ``package`` (``NNNN_name.sql``), oldest first."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(
                int(match["version"]), match["name"],
                tuple(statements(entry.read_text(encoding="utf-8"))),
            ))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {package}: {versions}")
    return found
