"""The dispatcher on the outbox path (ADR 204): pages whose queue rows the outbox wrote
move its position in memory, and their outbox positions stay until it records the
position; a dispatcher that dies before sends nothing twice when a new one re-reads them."""

from __future__ import annotations

import anyio
import pytest

from adapters.service.bootstrap import Container, build_transport, utc_now
from adapters.service.dispatcher import DISPATCH, Dispatcher
from tests.integration.test_outbox import container, drain, enqueue, positions  # noqa: F401

pytestmark = pytest.mark.postgres


def test_a_dispatcher_dying_before_it_records_its_position_sends_nothing_twice(
    container: Container,  # noqa: F811
) -> None:
    url = container.settings.database_url
    assert url is not None
    jobs = enqueue(container.ledger, 6)
    transport = build_transport(container.settings, container.backend)
    first_store, second_store = container.backend.open_views(), container.backend.open_views()

    async def main() -> None:
        first = Dispatcher(first_store, container.ledger, transport, clock=utc_now,
                           owner="first", page=2)  # fmt: skip
        assert await first.step() == 2
        assert await first.step() == 2
        assert first_store.tracking(DISPATCH).position == 0  # in memory only
        assert len(positions(url)) == 6  # kept until the position is recorded
        # the first dies here; a second reads the same pages again
        second = Dispatcher(second_store, container.ledger, transport, clock=utc_now,
                            owner="second", page=2)  # fmt: skip
        while await second.step():
            pass
        assert second.sent == 0
        assert second_store.tracking(DISPATCH).position > 0  # recorded at the head
        assert positions(url) == []  # and the outbox's positions forgotten with it
        got = await drain(transport)  # each job's message once: the outbox's
        assert sorted(str(r.message.job_id) for r in got) == sorted(map(str, jobs))

    try:
        anyio.run(main)
    finally:
        first_store.close()
        second_store.close()
        anyio.run(transport.aclose)
