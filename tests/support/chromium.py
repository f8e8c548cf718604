"""The distribution's Chromium for the browser tests, driven by Playwright, offline.

The tests never download a browser (``playwright install`` is never run): they launch the
Chromium that the distribution's package installed (``apt-get install chromium
chromium-driver`` on Debian, as ``.ci/run`` does when it is missing), or the executable
``LEDGER_CHROMIUM`` names. The flags keep a headless Chromium from calling home: this
machine's network is closed, and without them Chromium keeps retrying refused connections
(component updates, sync, QUIC probes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

INSTALL_HINT = (
    "the browser tests need Chromium: install the distribution's package "
    "(Debian/Ubuntu: apt-get install -y chromium chromium-driver; .ci/run does it) "
    "or set LEDGER_CHROMIUM to a Chromium executable"
)

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumMissing(RuntimeError):
    """No Chromium executable was found."""


def find_chromium() -> Path:
    """``LEDGER_CHROMIUM``, else ``chromium`` on PATH, else /usr/bin/chromium; else raise
    :class:`ChromiumMissing` saying how to install it."""
    named = os.environ.get("LEDGER_CHROMIUM")
    if named:
        if not os.access(named, os.X_OK):
            raise ChromiumMissing(f"LEDGER_CHROMIUM={named!r} is not an executable; {INSTALL_HINT}")
        return Path(named)
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ChromiumMissing(f"no chromium executable found; {INSTALL_HINT}")
