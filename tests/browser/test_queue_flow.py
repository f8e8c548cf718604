"""Pausing a queue from the Queues page, in Chromium, by keyboard: its new jobs wait while
it is paused and run once it is resumed."""

from __future__ import annotations

import time
from uuid import uuid4

from playwright.sync_api import Page, expect

from tests.browser.flows import sign_in
from tests.support.browser import assert_accessible, press_by_keyboard
from tests.support.console_server import Console, wait_until


def reload_until(page: Page, row: str, paused: str, timeout: float = 30) -> None:
    """Reload until the queue's row says ``paused`` ("no" or "paused ...")."""
    deadline = time.monotonic() + timeout
    cell = page.get_by_test_id(row).get_by_test_id("queue-paused")
    while not cell.inner_text().strip().startswith(paused):
        assert time.monotonic() < deadline, f"{row} still {cell.inner_text()!r}"
        page.wait_for_timeout(300)
        page.reload()


def test_pause_a_queue_then_resume_it(page: Page, console: Console) -> None:
    queue = f"ui-{uuid4().hex[:6]}"
    first = console.enqueue(queue=queue, payload={"seconds": 0.1})
    wait_until(lambda: console.job(first)["status"] == "completed", timeout=60)
    sign_in(page, console.admin_key, then="/ui/queues")
    row = page.get_by_test_id(f"queue-{queue}")
    expect(row.get_by_test_id("queue-paused")).to_have_text("no")

    row.get_by_label("Reason").fill("smtp down")
    with page.expect_navigation():
        press_by_keyboard(page, page.get_by_test_id(f"pause-{queue}"))
    reload_until(page, f"queue-{queue}", "paused")  # the page reads a view: it may lag
    row = page.get_by_test_id(f"queue-{queue}")
    expect(row.get_by_test_id("queue-paused")).to_contain_text("smtp down")
    assert_accessible(page)

    held = console.enqueue(queue=queue, payload={"seconds": 0.1})
    time.sleep(3)  # the worker is idle: a job of a running queue completes within this
    assert console.job(held)["status"] == "pending"

    with page.expect_navigation():
        press_by_keyboard(page, page.get_by_test_id(f"resume-{queue}"))
    reload_until(page, f"queue-{queue}", "no")
    wait_until(lambda: console.job(held)["status"] == "completed", timeout=60)
