"""A kept PostgreSQL cluster for the console's benchmark (issue 15): seed a large ledger
once, measure it many times.

``python -m bench.console --jobs 1000000 --keep DIR`` initialises a cluster in ``DIR``
(from the local PostgreSQL binaries, as ``tests.support.pg`` does), seeds database
``console`` in it, measures, and stops the cluster leaving its files, with ``seed.json``
saying what was seeded. ``--reuse DIR`` starts that cluster again on a free port and
measures without seeding (the ledger's schema is migrated first, as ``ledger serve``
would, so a new migration's index is built on the seeded rows).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.support.pg import LocalCluster, PostgresUnavailable, find_bindir, with_database
from tests.support.pg import _free_port as free_port

DATABASE = "console"
SEED_FILE = "seed.json"


class KeptCluster(LocalCluster):
    """A local cluster in a directory of our choosing, stopped but never removed."""

    def close(self) -> None:
        atexit.unregister(self.close)
        if self._running:
            self.stop("fast")


def _cluster(base: Path) -> KeptCluster:
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("--keep and --reuse need the local PostgreSQL binaries")
    run_as = "postgres" if os.geteuid() == 0 else None
    cluster = KeptCluster(bindir, base, free_port(), run_as)
    atexit.register(cluster.close)
    return cluster


@contextmanager
def new_kept(base: Path) -> Iterator[str]:
    """A new cluster in ``base`` (absent or empty) with an empty database: its URL."""
    if base.exists() and any(base.iterdir()):
        raise SystemExit(f"--keep {base}: the directory is not empty (use --reuse)")
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres", group="postgres")
    cluster = _cluster(base)
    cluster.initdb()
    cluster.start()
    try:
        yield cluster.create_database(DATABASE)
    finally:
        cluster.close()


@contextmanager
def reused(base: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The cluster kept in ``base``, started: its database's URL and what was seeded."""
    if not (base / "data" / "PG_VERSION").exists() or not (base / SEED_FILE).exists():
        raise SystemExit(f"--reuse {base}: no seeded cluster there (seed with --keep)")
    cluster = _cluster(base)
    if (base / "data" / "postmaster.pid").exists():
        left_running(cluster)
    cluster.start()
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        # what a killed bench.console_explain left (auto_explain): the kept cluster's own
        # settings are in postgresql.conf, not set with ALTER SYSTEM
        conn.execute("ALTER SYSTEM RESET ALL")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield with_database(cluster.url, DATABASE), read_seed(base)
    finally:
        cluster.close()


def left_running(cluster: KeptCluster) -> None:
    """Stop the kept cluster a killed run left running (its own data directory only)."""
    try:
        cluster.stop("fast")
    except PostgresUnavailable:
        return  # not running: a stale pid file, which pg_ctl start replaces
    print(f"stopped the cluster a previous run left running in {cluster.base}")


def read_seed(base: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((base / SEED_FILE).read_text())
    return found


def write_seed(base: Path, seeded: dict[str, Any]) -> None:
    (base / SEED_FILE).write_text(json.dumps(seeded, indent=2) + "\n")
