"""The policies on real stores with short clocks: stale recovery, dead letters, alerts,
redrive, and the dispatcher's at-least-once sends."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import anyio
import pytest

from adapters.service.backend import backend_for
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.dispatcher import DISPATCH, Dispatcher
from adapters.service.monitors import DeadLetterMonitor, StaleMonitor
from adapters.service.parts import (
    Part,
    dead_letter_part,
    dispatcher_part,
    projection_part,
    stale_part,
)
from adapters.service.settings import Settings
from adapters.slack.webhook import SlackWebhook
from ledger.commands import ClaimJob, CompleteJob, EnqueueJob, FailJob, RedriveJob
from ledger.errors import IllegalTransition
from ledger.ports.transport import Outgoing, Received, Transport
from ledger.status import Status
from tests.support.slack_receiver import Answer, SlackReceiver

SHORT = {
    "stale_threshold_minutes": 0.01,  # 0.6 s
    "check_interval_seconds": 0.2,
    "dlq_check_interval_seconds": 0.2,
    "alert_group_wait_seconds": 0.3,
    "retry_base_delay_seconds": 0.0,
    "retry_max_delay_seconds": 0.0,
}

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def container(store: str, store_url: str | None, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(ledger_data_dir=tmp_path / "data", database_url=store_url)
    wired = build(replace(settings, **SHORT))  # type: ignore[arg-type]
    yield wired
    wired.close()


def history(container: Container, job_id: UUID) -> list[str]:
    return [type(e).__name__ for e in container.ledger.history(job_id)]


async def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await anyio.sleep(0.05)
    return time.monotonic() - start


async def received_jobs(transport: Transport, seconds: float = 1.0) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got += await transport.receive(max_messages=10, wait_seconds=0.2)
    return got


def run_with(parts: list[Part], body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for part in parts:
                await tg.start(part)
            with anyio.fail_after(60):
                await body()
            tg.cancel_scope.cancel()

    anyio.run(main)


@stores
def test_a_silent_worker_is_requeued_within_threshold_plus_interval_and_resent(
    container: Container,
) -> None:
    ledger = container.ledger
    transport = build_transport(container.settings, container.backend)
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), utc_now()).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="doomed"), utc_now())
    claimed_at = time.monotonic()
    limit = container.settings.stale_threshold.total_seconds() + \
        container.settings.check_interval_seconds

    async def body() -> None:
        await wait_for(lambda: ledger.get_job(job_id).status == Status.PENDING)
        recovery = time.monotonic() - claimed_at
        assert recovery < limit + 1.5, recovery  # projection lag and scheduling on top
        messages = await received_jobs(transport, 1.5)
        assert [m.message.job_id for m in messages].count(job_id) == 2  # enqueue + requeue
        await transport.aclose()

    run_with([projection_part(container, poll_interval=0.05), stale_part(container),
              dispatcher_part(container, transport)], body)
    names = history(container, job_id)
    assert names.count("StaleDetected") == 1
    assert names[-1] == "Requeued"
    stale = [e for e in container.ledger.history(job_id) if type(e).__name__ == "StaleDetected"]
    assert stale[0].threshold_seconds == pytest.approx(0.6)  # type: ignore[attr-defined]


@stores
def test_two_stale_monitors_requeue_an_episode_once(container: Container) -> None:
    ledger = container.ledger
    jobs = []
    for n in range(10):
        job_id = ledger.execute(EnqueueJob(customer_id=f"c{n}"), utc_now()).job_id
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), utc_now())
        jobs.append(job_id)

    async def body() -> None:
        await wait_for(lambda: all(ledger.get_job(j).status == Status.PENDING for j in jobs))
        await anyio.sleep(0.6)  # both monitors keep scanning

    run_with([projection_part(container, poll_interval=0.05), stale_part(container),
              stale_part(container)], body)
    for job_id in jobs:
        assert history(container, job_id).count("StaleDetected") == 1


@stores
def test_a_failing_job_is_dead_lettered_and_alerted_exactly_once_through_429_and_500(
    container: Container,
) -> None:
    ledger = container.ledger
    job_id = ledger.execute(EnqueueJob(customer_id="acme", max_attempts=2), utc_now()).job_id
    for attempt in (1, 2):
        ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), utc_now())
        ledger.execute(FailJob(job_id=job_id, attempt=attempt, worker_id="w", error="boom"),
                       utc_now())
    assert ledger.get_job(job_id).status == Status.DEAD_LETTERED
    with SlackReceiver() as slack:
        slack.script(Answer(429, "rate_limited", {"Retry-After": "1"}), Answer(500, "oops"))

        async def body() -> None:
            await wait_for(lambda: "AlertSent" in history(container, job_id))
            await anyio.sleep(1.5)  # more ticks: nothing is sent twice

        run_with([projection_part(container, poll_interval=0.05),
                  dead_letter_part(container, None, SlackWebhook(slack.url), "slack")], body)
        assert len(slack.posts) == 1
        text = str(slack.posts[0])
        assert str(job_id) in text
        assert "*Customer ID:*\\nacme" in text
        assert "*Retry Attempts:*\\n2" in text
    assert history(container, job_id).count("AlertSent") == 1


@stores
def test_a_permanent_webhook_failure_is_recorded_and_not_retried(container: Container) -> None:
    ledger = container.ledger
    job_id = ledger.execute(EnqueueJob(customer_id="acme", max_attempts=1), utc_now()).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), utc_now())
    ledger.execute(FailJob(job_id=job_id, attempt=1, worker_id="w", error="boom"), utc_now())
    with SlackReceiver() as slack:
        slack.script(*[Answer(404, "no_service")] * 5)

        async def body() -> None:
            await wait_for(lambda: "AlertFailed" in history(container, job_id))
            await anyio.sleep(1.0)

        run_with([projection_part(container, poll_interval=0.05),
                  dead_letter_part(container, None, SlackWebhook(slack.url), "slack")], body)
        assert slack.posts == []
        assert len(slack.answers) == 4  # exactly one try
    assert ledger.get_job(job_id).alert_failed


@stores
def test_redrive_sends_once_however_often_it_is_asked(container: Container) -> None:
    ledger = container.ledger
    transport = build_transport(container.settings, container.backend)
    job_id = ledger.execute(EnqueueJob(customer_id="acme", max_attempts=1), utc_now()).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), utc_now())
    ledger.execute(FailJob(job_id=job_id, attempt=1, worker_id="w", error="boom"), utc_now())
    ledger.execute(RedriveJob(job_id=job_id, actor="ops"), utc_now())
    with pytest.raises(IllegalTransition):
        ledger.execute(RedriveJob(job_id=job_id, actor="ops-again"), utc_now())

    async def body() -> None:
        messages = await received_jobs(transport, 1.5)
        versions = [m.message.dedup_key.rsplit(":", 1)[1] for m in messages]
        assert versions == ["v1", "v5"]  # Enqueued, Redriven
        claim = ledger.execute(ClaimJob(job_id=job_id, worker_id="w2"), utc_now())
        assert claim.attempt == 2
        ledger.execute(CompleteJob(job_id=job_id, attempt=2, worker_id="w2"), utc_now())
        await transport.aclose()

    run_with([dispatcher_part(container, transport)], body)
    assert history(container, job_id).count("Redriven") == 1


class CrashingTransport:
    """A transport whose first send_batch dies (a crash between event and send)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.crashed = False

    async def send_batch(self, entries: list[Outgoing]) -> list[str]:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("killed before the send")
        return await self.inner.send_batch(entries)


@stores
def test_a_crash_between_event_and_send_still_sends_after_restart(container: Container) -> None:
    ledger = container.ledger
    transport = build_transport(container.settings, container.backend)
    ids = [ledger.execute(EnqueueJob(customer_id="acme"), utc_now()).job_id for _ in range(5)]
    store = container.backend.open_views()
    try:
        crashing = CrashingTransport(transport)
        first = Dispatcher(store, ledger, crashing, clock=utc_now, owner="a")  # type: ignore[arg-type]
        if ledger.outbox is not None:  # ADR 151: the rows committed with the events,
            assert anyio.run(first.step) == 5  # so there is no send left to crash in
            assert first.sent == 0
            assert anyio.run(first.step) == 0  # at the head: the position recorded (ADR 204)
        else:
            with pytest.raises(ConnectionError):
                anyio.run(first.step)
            assert store.tracking(DISPATCH).position == 0  # nothing counted as sent
            second = Dispatcher(store, ledger, transport, clock=utc_now, owner="b")
            assert anyio.run(second.step) == 5
        assert store.tracking(DISPATCH).position == 5

        async def drain() -> list[Received]:
            got = await received_jobs(transport, 1.0)
            await transport.aclose()
            return got

        assert sorted(m.message.job_id for m in anyio.run(drain)) == sorted(ids)
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_messages_in_the_sqs_dead_letter_queue_are_recorded_and_alerted(
    container: Container, sqs_queues: object
) -> None:
    from tests.support.sqs import SqsQueues

    assert isinstance(sqs_queues, SqsQueues)
    settings = replace(container.settings, sqs_queue_url=sqs_queues.queue_url,
                       sqs_dlq_url=sqs_queues.dlq_url)
    ledger = container.ledger
    ledger.outbox = None  # built for the local queue; on SQS the dispatcher sends (ADR 151)
    job_id = ledger.execute(EnqueueJob(customer_id="globex"), utc_now()).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="crashy"), utc_now())
    wired = Container(settings=settings, backend=container.backend, ledger=ledger)

    with SlackReceiver() as slack:

        async def main() -> None:
            transport = build_transport(settings, wired.backend)
            store = wired.backend.open_views()
            try:
                await Dispatcher(store, ledger, transport, clock=utc_now, owner="t").step()
                for _ in range(sqs_queues.max_receive_count + 1):  # received, never deleted
                    await transport.receive(max_messages=1, wait_seconds=0.5,
                                            visibility_timeout=0)
                    await anyio.sleep(0.1)
                async with anyio.create_task_group() as tg:
                    await tg.start(projection_part(wired, poll_interval=0.05))
                    await tg.start(dead_letter_part(wired, transport, SlackWebhook(slack.url),
                                                    "slack"))
                    with anyio.fail_after(60):
                        while "AlertSent" not in history(container, job_id):
                            await anyio.sleep(0.1)
                    tg.cancel_scope.cancel()
            finally:
                store.close()
                await transport.aclose()

        anyio.run(main)
        assert len(slack.posts) == 1
    dead = next(e for e in ledger.history(job_id) if type(e).__name__ == "DeadLettered")
    assert dead.source == "sqs_dlq"  # type: ignore[attr-defined]
    assert dead.message_id  # type: ignore[attr-defined]
    # The configured maxReceiveCount, not the receive count the monitor's own read raised.
    assert dead.reason == (  # type: ignore[attr-defined]
        f"message exceeded the queue's max receives ({sqs_queues.max_receive_count})"
    )


def test_stale_findings_say_what_would_happen(tmp_path: Path) -> None:
    settings = replace(Settings(ledger_data_dir=tmp_path / "data"), **SHORT)  # type: ignore[arg-type]
    wired = build(settings)
    store = backend_for(settings).open_views()
    try:
        ledger = wired.ledger
        last = ledger.execute(EnqueueJob(customer_id="a", max_attempts=1), utc_now()).job_id
        more = ledger.execute(EnqueueJob(customer_id="b", max_attempts=3), utc_now()).job_id
        for job_id in (last, more):
            ledger.execute(ClaimJob(job_id=job_id, worker_id="w"),
                           utc_now() - timedelta(seconds=5))
        from projections.registry import VIEWS
        from projections.runner import catch_up_unfed

        catch_up_unfed(store, [VIEWS["job_status"]])
        monitor = StaleMonitor(store, ledger, settings, clock=utc_now, detected_by="t")
        actions = {f.job.job_id: f.action for f in monitor.findings()}
        assert actions == {last: "dead-letter", more: "requeue"}
        report = monitor.scan()
        assert (report.requeued, report.dead_lettered) == (1, 1)
        assert monitor.findings() == []  or all(  # the view has not caught up yet
            ledger.get_job(f.job.job_id).status != Status.IN_PROGRESS for f in monitor.findings())
    finally:
        store.close()
        wired.close()


__all__ = ["DeadLetterMonitor"]
