"""Processes starting together on a fresh PostgreSQL (a compose stack) all come up."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from adapters.service.bootstrap import build
from adapters.service.settings import Settings


@pytest.mark.postgres
def test_many_starts_at_once_on_a_fresh_database(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=postgres_url, ledger_data_dir=tmp_path)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def boot() -> None:
        start.wait()
        try:
            build(settings).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=boot) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
