"""CPU per job, end to end and burn-down, the ledger beside Procrastinate in one run:
``python -m bench.cpu_per_job [--quick|--tiny]`` runs ``bench.end_to_end``'s and
``bench.burn_down``'s throughput measurements (not the kill) and prints their jobs/s and
where each side's CPU went per job (``bench.cpu_split``). It writes nothing: the sections
of docs/benchmarks.md are the suite's (``python -m bench``) or ``bench.burn_down``'s."""

from __future__ import annotations

import argparse
import os

from bench import burn_down, end_to_end
from bench.common import Figure
from tests.support.pg import start_postgres


def report(title: str, figures: list[Figure]) -> str:
    lines = [f"### {title} (load average {os.getloadavg()[0]:.1f} at the end)", "",
             "| path | jobs/s |", "|---|---:|"]  # fmt: skip
    lines += [f"| {f.name} | {f.spread()} |" for f in figures]
    return "\n".join(lines + burn_down.cpu_lines(figures))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_per_job")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--only", choices=("e2e", "burn_down"))
    args = parser.parse_args(argv)
    e2e = end_to_end.TINY if args.tiny else end_to_end.QUICK if args.quick else end_to_end.FULL
    burn = burn_down.TINY if args.tiny else burn_down.QUICK if args.quick else burn_down.FULL
    with start_postgres() as server:
        if args.only != "burn_down":
            figures = [end_to_end.ledger_runs(server, e2e), end_to_end.peer_runs(server, e2e)]
            print(report("End to end", figures), flush=True)
        if args.only != "e2e":
            print(report("Burn-down", burn_down.run(server, burn)), flush=True)


if __name__ == "__main__":
    main()
