"""The API process is named by an opaque id, never its pid (ADR 180): in ``/health`` and
in the ``X-Served-By`` header of ``ledger serve --processes N``."""

from __future__ import annotations

import os

from adapters.http.process_info import ID_VARIABLE, new_process_id, process_of


def test_a_process_is_named_by_the_id_its_supervisor_gave() -> None:
    given = new_process_id()
    process = process_of({ID_VARIABLE: given, "LEDGER_PROCESS_INDEX": "1",
                          "LEDGER_PROCESSES": "2"})  # fmt: skip
    assert (process.id, process.index, process.processes) == (given, 1, 2)


def test_a_lone_process_has_an_id_of_its_own_that_is_not_its_pid() -> None:
    first, second = process_of({}), process_of({})
    assert first.id == second.id
    assert len(first.id) == 12
    assert int(first.id, 16) >= 0
    assert str(os.getpid()) not in first.id
    assert not hasattr(first, "pid")


def test_ids_are_new_each_time_and_odd_ones_are_not_taken() -> None:
    assert len({new_process_id() for _ in range(100)}) == 100
    for odd in ("", "a b", "x\r\nSet-Cookie: y", "z" * 65):
        assert process_of({ID_VARIABLE: odd}).id == process_of({}).id
