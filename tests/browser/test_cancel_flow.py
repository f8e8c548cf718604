"""Cancelling a running job from its page, in Chromium: the worker's next heartbeat hears
it, the handler stops and the worker reports the attempt cancelled."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.flows import reload_until_status, sign_in
from tests.support.browser import assert_accessible, press_by_keyboard
from tests.support.console_server import Console, wait_until


def test_cancel_a_running_job_and_see_its_worker_stop(page: Page, console: Console) -> None:
    job_id = console.enqueue(customer_id="cancel-flow", payload={"seconds": 600})
    wait_until(lambda: console.job(job_id)["status"] == "in_progress", timeout=60)
    sign_in(page, console.admin_key, then=f"/ui/jobs/{job_id}")
    expect(page.get_by_test_id("job-status")).to_have_text("in_progress")
    assert_accessible(page)

    page.locator("#cancel-reason").fill("customer asked")
    with page.expect_navigation():
        press_by_keyboard(page, page.get_by_test_id("cancel-button"))

    reload_until_status(page, "cancelled")
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("CancelRequested")
    expect(timeline).to_contain_text("customer asked")
    cancelled = timeline.locator("tr", has_text="Cancelled").last
    expect(cancelled).to_contain_text("worker")  # the worker stopped and said so
    job = console.job(job_id)
    assert job["status"] == "cancelled"
    assert job["finished_at"] is not None
    assert_accessible(page)
