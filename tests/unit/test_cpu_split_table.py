"""bench.cpu_split's arithmetic: CPU ms per job by group, "other work", idle, ceiling."""

from __future__ import annotations

import os

from bench.cpu_split import Split, table


def test_per_job_other_work_idle_and_ceiling() -> None:
    split = Split({"workers": 1.0, "PostgreSQL": 0.5}, jobs=1000, wall=1.0, busy=1.8, total=2.0)
    assert split.ms_per_job() == {"workers": 1.0, "PostgreSQL": 0.5,
                                  "other work on the machine": 0.30000000000000004}
    assert split.own_ms == 1.5
    assert round(split.idle, 2) == 0.1
    assert round(split.ceiling(2)) == 1333


def test_runs_add_up_and_survive_the_note() -> None:
    total = Split()
    total.add(Split({"workers": 1.0}, 500, 1.0, 1.0, 2.0))
    total.add(Split({"workers": 3.0, "PostgreSQL": 1.0}, 500, 1.0, 4.0, 4.0))
    assert Split.from_note(total.note()) == total
    assert total.ms_per_job()["workers"] == 4.0
    assert total.ms_per_job()["PostgreSQL"] == 1.0


def test_the_table_has_a_column_per_system_and_other_work_last() -> None:
    lines = table({"ledger": Split({"serve": 1.0, "workers": 1.0}, 1000, 1, 2, 2),
                   "peer": Split({"workers": 2.0}, 1000, 1, 2, 2)})
    names = [line.split("|")[1].strip() for line in lines[2:]]
    assert names[:3] == ["serve", "workers", "other work on the machine"]
    assert lines[2] == "| serve | 1.00 |  |"
    assert f"({os.cpu_count()} CPUs / CPU per job)" in lines[-1]
