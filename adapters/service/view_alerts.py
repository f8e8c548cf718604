"""An alert when a view stops on an event, sent once through the dead letters' alert sink.

The projection runner records the error and the position on the stopped view's tracking
row. This part reads the tracking rows every few seconds and posts one message per
stopped view and position (Slack when ``SLACK_WEBHOOK_URL`` is set, else the log). That it
was sent is recorded as a tracking row of its own (``alerted:<view>``, its position the
view's plus one), so a restart, or a second process running this part, does not send it
again; a view that is fixed and later stops at another position is alerted again (ADR 65).
The row is advanced after the post: a crash between the two repeats the alert once, which
is harmless, and never loses it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from adapters.slack.webhook import AlertSink
from ledger.errors import LedgerError, StoreUnavailable
from ledger.policies.alerts import Delivered, PermanentFailure
from projections.store import Tracking, ViewStore

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
LOCK = "view-alerts"
SHOWN_ERROR = 1500


def alerted_name(view: str) -> str:
    """The tracking row that records the last stop of ``view`` alerted."""
    return f"alerted:{view}"


def stopped_message(stopped: Tracking) -> dict[str, Any]:
    """The webhook body for one stopped view."""
    title = f"Projection stopped: view {stopped.view} at position {stopped.position}"
    error = (stopped.error or "")[:SHOWN_ERROR]
    return {
        "text": title,
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": f":rotating_light: {title}"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*View:*\n{stopped.view}"},
                {"type": "mrkdwn", "text": f"*Position:*\n{stopped.position}"},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Error:*\n```{error}```"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                "*Action Items:*\n"
                "• See each view's position and error: `ledger projections status`\n"
                "• The view is not fed past this event until it can apply it"
            )}},
        ],
    }


@dataclass
class ViewAlerts:
    """Sends the alert of each newly stopped view in ``views``, once."""

    store: ViewStore
    sink: AlertSink
    views: Iterable[str]
    owner: str = "view-alerts"
    attempts: dict[str, int] = field(default_factory=dict)
    reopen: Callable[[], ViewStore] | None = None
    """Opens a new session when the store's is lost (a database restart, ADR 75); the
    sessions it opens are this part's to close, the first one its caller's."""
    opened: list[ViewStore] = field(default_factory=list)

    def due(self) -> list[Tracking]:
        """The stopped views whose stop is not yet alerted (holding the lock: one sender)."""
        if not self.store.try_lock(LOCK):
            return []
        wanted = set(self.views)
        return [
            t for t in self.store.all_tracking()
            if t.view in wanted and t.error
            and self.store.tracking(alerted_name(t.view)).position != t.position + 1
        ]

    def record(self, stopped: Tracking) -> None:
        mark = self.store.tracking(alerted_name(stopped.view))
        with self.store.transaction():
            self.store.advance(mark, stopped.position + 1, self.owner)

    async def check(self) -> int:
        """Post the due alerts; returns how many were sent."""
        sent = 0
        for stopped in await anyio.to_thread.run_sync(self.due):
            key = f"{stopped.view}@{stopped.position}"
            attempt = self.attempts.get(key, 0) + 1
            outcome = await self.sink.post(stopped_message(stopped), attempt)
            if isinstance(outcome, Delivered | PermanentFailure):
                if isinstance(outcome, PermanentFailure):
                    log.error("the alert of stopped view %s was refused: %s", stopped.view,
                              outcome.reason)
                await anyio.to_thread.run_sync(self.record, stopped)
                self.attempts.pop(key, None)
                sent += isinstance(outcome, Delivered)
            else:  # retried at the next check
                self.attempts[key] = attempt
                log.warning("the alert of stopped view %s: %s", stopped.view, outcome.reason)
        return sent

    async def __call__(
        self, *, interval: float = CHECK_SECONDS,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Check every ``interval`` seconds until cancelled; a failed round is retried."""
        task_status.started()
        try:
            while True:
                await self.round()
                await anyio.sleep(interval)
        finally:
            with anyio.CancelScope(shield=True):
                for store in self.opened:
                    with contextlib.suppress(LedgerError):
                        await anyio.to_thread.run_sync(store.close)

    async def round(self) -> None:
        """One check; a failed one is logged and retried at the next round, on a new
        session if the server did not answer (the old one may be dead for good)."""
        try:
            await self.check()
        except StoreUnavailable as error:
            log.warning("view alerts: %s", error)
            await anyio.to_thread.run_sync(self._new_session)
        except Exception as error:
            log.warning("view alerts: %s", error)

    def _new_session(self) -> None:
        if self.reopen is None:
            return
        try:
            fresh = self.reopen()
        except LedgerError as error:  # still down: the next round tries again
            log.warning("view alerts: reconnect failed: %s", error)
            return
        if self.store in self.opened:
            self.opened.remove(self.store)
            with contextlib.suppress(LedgerError):
                self.store.close()
        self.store = fresh
        self.opened.append(fresh)
