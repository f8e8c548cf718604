"""Duplicate deliveries, as an at-least-once queue makes them (fault injection).

:class:`Duplicator` follows the log as the dispatcher does and keeps, per job, the message
the dispatcher built for its ``Enqueued`` event (with the dispatcher's own
:func:`adapters.service.dispatcher.message_for`, so the copy is byte for byte what was sent: same
body by the transport's encoder, same dedup key, same attributes). :meth:`Duplicator.inject`
sends copies of those messages for jobs that are in progress or already completed straight
to the transport's queue (on SQS to the queue itself, on the local queue as a new row
through its store), as SQS delivering a message twice would.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio

from adapters.service.backend import backend_for
from adapters.service.bootstrap import build_transport, utc_now
from adapters.service.dispatcher import message_for
from adapters.service.settings import Settings
from ledger.ports.transport import Outgoing
from projections.events import Enqueued, decode_page
from projections.queries.job_status import JobStatusQueries
from projections.store import ViewStore

PAGE = 2000


@dataclass
class Injected:
    """The duplicates one :meth:`Duplicator.inject` sent, by the job's status then."""

    in_progress: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.in_progress) + len(self.completed)


class Duplicator:
    """Sends copies of already-sent job messages. ``settings`` / ``env`` name the queue
    to send to (for SQS, the real endpoint rather than any proxy in front of it)."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        self.settings = settings
        self.env = dict(env)
        self.messages: dict[str, Outgoing] = {}
        self._position = 0

    def follow(self, store: ViewStore) -> None:
        """Read the log from where it left off; remember each job's first message."""
        while True:
            page = store.read_events(self._position, PAGE)
            if not page:
                return
            events, error = decode_page(page)
            for event in events:
                body = event.body
                if isinstance(body, Enqueued) and event.originator_id not in self.messages:
                    # What Dispatcher._message builds for an Enqueued event.
                    built = message_for(event, body.customer_id, body.queue, 0, utc_now())
                    if built is not None:
                        self.messages[event.originator_id] = built
            if error is not None:
                raise error
            self._position = events[-1].position if events else page[-1][0]

    def inject(self, rng: random.Random, in_progress: int, completed: int) -> Injected:
        """Send copies for up to ``in_progress`` jobs in progress and ``completed`` completed
        jobs (as the job status view shows them now)."""
        store = backend_for(self.settings).open_views()
        try:
            self.follow(store)
            jobs = JobStatusQueries(store)
            running = [str(j.job_id) for j in jobs.find(status="in_progress", limit=1000)]
            done = [str(j.job_id) for j in jobs.find(status="completed", limit=5000)]
        finally:
            store.close()
        chosen = Injected(
            in_progress=_pick(rng, [j for j in running if j in self.messages], in_progress),
            completed=_pick(rng, [j for j in done if j in self.messages], completed),
        )
        copies = [self.messages[j] for j in chosen.in_progress + chosen.completed]
        if copies:
            anyio.run(self._send, copies)
        return chosen

    async def _send(self, copies: list[Outgoing]) -> None:
        transport = build_transport(self.settings, backend_for(self.settings), self.env)
        try:
            for copy in copies:  # one at a time, as separate deliveries
                await transport.send(copy.message)
        finally:
            await transport.aclose()


def _pick(rng: random.Random, candidates: list[str], count: int) -> list[str]:
    return rng.sample(candidates, min(count, len(candidates)))
