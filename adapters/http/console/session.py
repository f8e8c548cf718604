"""The console's session: a signed cookie, the viewer it names, and its CSRF token.

The cookie holds ``<nonce>.<key id or ->.<issued unix seconds>.<signature>``: the
signature is an HMAC-SHA256 of the rest with the console's secret, so a client cannot
forge or alter it; it never holds the API key. Each request re-reads the key by its id
(one indexed lookup), so a revoked key's session ends at once. A visitor without a
session gets an anonymous one (key ``-``) on the first page, so that every form, the
sign-in form included, carries a CSRF token: an HMAC of the session's nonce, checked on
every POST (ADR 140).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from adapters.http.access import Access
from adapters.http.console.tasks import ViewTasks
from adapters.service.view_rebuild import Rebuilds
from ledger.access import OPEN, KeyStore, Principal, Role
from ledger.errors import LedgerError
from projections.store import ViewStore

COOKIE = "ledger_console"
MAX_AGE_SECONDS = 12 * 3600
"""A session older than this needs a new sign-in."""
SECRET_FILE = "console-secret"  # noqa: S105 - a file name


class ConsoleRefused(LedgerError):
    """The console refused this request."""

    code = "forbidden"


class CsrfRefused(ConsoleRefused):
    """The form's CSRF token is missing or does not match this session; reload the page."""

    code = "csrf"


class NotSignedIn(LedgerError):
    """Sign in with an API key to use the console."""

    code = "unauthenticated"


@dataclass(frozen=True)
class Console:
    """What the console is built from (besides the API's own dependencies)."""

    secret: bytes
    keys: KeyStore
    access: Access
    """Whether the console is open now (the API's rule: embedded, loopback, no key)."""
    open_views: Callable[[], ViewStore]
    """A fresh view session (audit, rebuild, verify open their own)."""
    stale_threshold: timedelta
    alert_grace: timedelta
    tasks: ViewTasks = field(default_factory=ViewTasks)
    """Rebuilds and verifies started from the console."""
    rebuilds: Rebuilds | None = None
    """How they run: as the CLI's (the archive's checkpoint, a checkpoint after)."""


@dataclass(frozen=True)
class Session:
    nonce: str
    key_id: str | None
    issued: int

    def csrf(self, secret: bytes) -> str:
        return _sign(secret, f"csrf:{self.nonce}")


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the console, and the session that says so."""

    principal: Principal | None
    """``None``: not signed in (and the console is not open)."""
    session: Session
    csrf: str
    fresh_cookie: str | None = None
    """A cookie value to set (a new anonymous session)."""

    @property
    def may_act(self) -> bool:
        return self.principal is not None and self.principal.role is Role.ADMIN

    @property
    def label(self) -> str:
        p = self.principal
        if p is None:
            return "not signed in"
        if p.key_id is None:
            return "open (loopback, no keys)"
        return f"key {p.key_id} ({p.role})"


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def encode(secret: bytes, session: Session) -> str:
    body = f"{session.nonce}.{session.key_id or '-'}.{session.issued}"
    return f"{body}.{_sign(secret, body)}"


def decode(secret: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session a cookie value names, or ``None`` if it is forged, altered or old."""
    if not value or len(value) > 256:
        return None
    parts = value.split(".")
    if len(parts) != 4:
        return None
    nonce, key_id, issued_text, signature = parts
    if not hmac.compare_digest(_sign(secret, ".".join(parts[:3])), signature):
        return None
    try:
        issued = int(issued_text)
    except ValueError:
        return None
    if (now if now is not None else time.time()) - issued > MAX_AGE_SECONDS:
        return None
    return Session(nonce, None if key_id == "-" else key_id, issued)


def new_session(key_id: str | None = None) -> Session:
    return Session(secrets.token_urlsafe(16), key_id, int(time.time()))


def principal_of_session(keys: KeyStore, session: Session) -> Principal | None:
    """The session's key as a principal while it is active and may use the console."""
    if session.key_id is None:
        return None
    record = keys.get(session.key_id)
    if record is None or not record.active:
        return None
    if record.role not in (Role.STAFF, Role.ADMIN):
        return None
    return Principal(record.role, record.customer_id, record.key_id)


def viewer_for(console: Console, cookie: str | None, open_now: bool) -> Viewer:
    """The viewer of a request (call off the event loop: it may read the key store)."""
    session = decode(console.secret, cookie)
    fresh = None
    if session is None:
        session = new_session()
        fresh = encode(console.secret, session)
    principal = principal_of_session(console.keys, session)
    if principal is None and open_now:
        principal = OPEN
    return Viewer(principal, session, session.csrf(console.secret), fresh)


def check_csrf(console: Console, viewer: Viewer, token: str | None) -> None:
    if viewer.fresh_cookie is not None or not token or not hmac.compare_digest(
        token, viewer.csrf
    ):
        raise CsrfRefused()


def secret_from(configured: str | None, data_dir: Path | None) -> bytes:
    """``CONSOLE_SECRET`` when set; else on the embedded default a random secret kept in
    the data directory (mode 0600); else a random one for this process (sessions end at
    a restart)."""
    if configured:
        return configured.encode()
    if data_dir is None:
        return secrets.token_bytes(32)
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value.hex())
    os.chmod(path, 0o600)
    return value
