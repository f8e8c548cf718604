"""What-if replays on histories made by a real ledger and a real stale monitor on
deterministic clocks (issue 16): today's settings reproduce exactly the detections the log
holds; another threshold says what it would have done; a replay never appends."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.service.backend import backend_for
from adapters.service.bootstrap import Container, build
from adapters.service.monitors import StaleMonitor
from adapters.service.settings import Settings
from ledger.commands import ClaimJob, CompleteJob, EnqueueJob, RecordHeartbeat
from ledger.errors import AttemptSuperseded, LedgerError
from ledger.status import Status
from projections.registry import VIEWS
from projections.replays import InvalidReplay, replay_alerts, replay_log, replay_stale
from projections.runner import catch_up_unfed
from projections.stale_replay import StaleReplay
from projections.store import ViewStore

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
THRESHOLD = timedelta(seconds=30)
INTERVAL = timedelta(seconds=10)

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@dataclass
class Worker:
    """A scripted worker: heartbeats every ``beat`` s, is silent in ``[pause, resume)``,
    dies at ``dies`` (if set), completes at ``done``."""

    job_id: UUID
    claim_at: int
    beat: int
    pause: int
    resume: int
    done: int
    dies: int | None
    attempt: int = 0
    stopped: bool = False

    def act(self, container: Container, second: int, at: datetime) -> None:
        ledger = container.ledger
        dead = self.dies is not None and second >= self.dies
        if self.stopped or dead or second < self.claim_at:
            return
        try:
            if self.attempt == 0:
                if ledger.get_job(self.job_id).status == Status.PENDING:
                    self.attempt = ledger.execute(ClaimJob(job_id=self.job_id, worker_id="w"),
                                                  at).attempt
            elif second >= self.done:
                ledger.execute(CompleteJob(job_id=self.job_id, attempt=self.attempt,
                                           worker_id="w"), at)
                self.stopped = True
            elif (second - self.claim_at) % self.beat == 0 and not (
                self.pause <= second < self.resume
            ):
                ledger.execute(RecordHeartbeat(job_id=self.job_id, attempt=self.attempt,
                                               worker_id="w"), at)
        except AttemptSuperseded:
            self.stopped = True  # the SDK stops reporting once superseded
        except LedgerError:
            pass


def make_history(container: Container, views: ViewStore, seed: int, seconds: int = 400) -> None:
    """Jobs and scripted workers (some pause past the threshold, some die, some are
    reclaimed by a second worker after a requeue); the real monitor scans every tick."""
    draw = random.Random(seed)
    clock = [T0]
    monitor = StaleMonitor(views, container.ledger, container.settings,
                           clock=lambda: clock[0], detected_by="test")
    workers: list[Worker] = []
    for _ in range(12):
        job_id = container.ledger.execute(EnqueueJob(customer_id="c", max_attempts=5), T0).job_id
        for first in (True, False):  # a second worker takes the job if it is requeued
            start = draw.randrange(0, 120) if first else draw.randrange(120, 300)
            pause = start + draw.randrange(5, 200)
            workers.append(Worker(
                job_id, start, beat=draw.choice([3, 5, 8]), pause=pause,
                resume=pause + draw.choice([0, 10, 25, 40, 90]),
                done=start + draw.randrange(30, 250),
                dies=draw.choice([None, None, start + draw.randrange(10, 200)]),
            ))
    for second in range(seconds):
        if second % int(INTERVAL.total_seconds()) == 0:
            clock[0] = T0 + timedelta(seconds=second)
            catch_up_unfed(views, [VIEWS["job_status"]])
            monitor.scan()
        at = T0 + timedelta(seconds=second, milliseconds=500)
        for worker in workers:
            worker.act(container, second, at)
    catch_up_unfed(views, [VIEWS["job_status"]])


@pytest.fixture
def world(store: str, store_url: str | None, tmp_path: Path) -> Iterator[
        tuple[Container, ViewStore]]:
    settings = replace(Settings(ledger_data_dir=tmp_path / "data", database_url=store_url),
                       stale_threshold_minutes=0.5, check_interval_seconds=10.0,
                       retry_base_delay_seconds=0.0, retry_max_delay_seconds=0.0)
    container = build(settings)
    views = backend_for(settings).open_views()
    try:
        yield container, views
    finally:
        views.close()
        container.close()


@stores
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_todays_settings_reproduce_the_recorded_detections(
    world: tuple[Container, ViewStore], seed: int
) -> None:
    container, views = world
    make_history(container, views, seed)
    head = views.head()
    replay = StaleReplay(THRESHOLD, INTERVAL, T0)
    replay_log(views, replay, T0)
    assert replay.real, "the history has detections"
    assert {k: f.at for k, f in replay.flags.items()} == {k: f.at for k, f in replay.real.items()}
    assert {k: f.last_heartbeat_at for k, f in replay.flags.items()} == {
        k: f.last_heartbeat_at for k, f in replay.real.items()}
    report = replay.report()
    assert (report.flagged_not_really, report.really_flagged_not_would) == (0, 0)
    assert report.false_positives == report.really_false_positives
    assert report.recovery == report.really_recovery
    assert views.head() == head  # a replay never appends


@stores
def test_another_threshold_says_what_it_would_have_done(
    world: tuple[Container, ViewStore],
) -> None:
    container, views = world
    make_history(container, views, seed=4)
    head = views.head()
    today = replay_stale(views, threshold=THRESHOLD, interval=INTERVAL, start=T0)
    strict = replay_stale(views, threshold=timedelta(seconds=12), interval=INTERVAL, start=T0)
    lax = replay_stale(views, threshold=timedelta(minutes=5), interval=INTERVAL, start=T0)
    assert strict.would_flag > today.would_flag == today.really_flagged > lax.would_flag
    assert strict.false_positives > today.false_positives
    assert strict.flagged_not_really > 0
    assert lax.really_flagged_not_would > 0
    assert lax.recovery.count == 0 or (lax.recovery.p50 or 0) >= 300
    assert (strict.recovery.max or 0) <= 12 + 10
    alerts = replay_alerts(views, group_wait=timedelta(seconds=60), threshold=1, start=T0)
    assert (alerts.posts, alerts.dead_letters) == (0, 0)
    assert views.head() == head


def test_odd_settings_are_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    views = backend_for(Settings(ledger_data_dir=tmp_path / "data")).open_views()
    try:
        for threshold, interval in ((timedelta(0), INTERVAL), (THRESHOLD, -INTERVAL),
                                    (timedelta(days=5000), INTERVAL)):
            with pytest.raises(InvalidReplay):
                replay_stale(views, threshold=threshold, interval=interval, start=T0)
        with pytest.raises(InvalidReplay):
            replay_stale(views, threshold=THRESHOLD, interval=INTERVAL, start=T0,
                         until=T0 - INTERVAL)
        empty = replay_stale(views, threshold=THRESHOLD, interval=INTERVAL, start=T0)
        assert (empty.events, empty.would_flag) == (0, 0)
    finally:
        views.close()
