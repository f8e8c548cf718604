"""An operator's way through a dead letter, in Chromium: find it with the jobs page's
filter, read its timeline, redrive it by keyboard and watch it complete on the open page."""

from __future__ import annotations

from uuid import uuid4

from playwright.sync_api import Page, expect

from tests.browser.flows import reload_until_status, sign_in
from tests.support.browser import assert_accessible, press_by_keyboard, screenshot
from tests.support.console_server import Console, wait_until

POISON = {"poison": True, "fail_until": 3, "seconds": 0.1, "retry_seconds": 4}
"""Fails attempts 1-3 (dead-lettered), then the redriven attempt runs for 4 s."""


def dead_letter(console: Console, customer: str) -> str:
    job_id = console.enqueue(customer_id=customer, payload=POISON)
    wait_until(lambda: console.job(job_id)["status"] == "dead_lettered", timeout=60)
    return job_id


def test_find_a_dead_letter_read_its_timeline_redrive_it_and_see_it_complete(
    page: Page, console: Console
) -> None:
    customer = f"dl-{uuid4().hex[:8]}"
    job_id = dead_letter(console, customer)
    sign_in(page, console.admin_key, then="/ui/jobs")
    assert_accessible(page)
    screenshot(page, "jobs")

    page.get_by_test_id("filter-status").select_option("dead_lettered")
    page.get_by_test_id("filter-customer").fill(customer)
    press_by_keyboard(page, page.get_by_test_id("filter-submit"))
    expect(page.get_by_test_id("jobs-total")).to_have_text("1")
    rows = page.get_by_test_id("job-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ConnectionError")
    with page.expect_navigation():
        press_by_keyboard(page, rows.first.get_by_test_id("job-link"))

    expect(page.get_by_test_id("job-id")).to_have_text(job_id)
    expect(page.get_by_test_id("job-status")).to_have_text("dead_lettered")
    timeline = page.get_by_test_id("timeline")
    for kind in ("Enqueued", "Claimed", "Failed", "DeadLettered"):
        expect(timeline).to_contain_text(kind)
    for attempt in (1, 2, 3):
        expect(page.get_by_test_id(f"lane-{attempt}")).to_have_count(1)
    expect(page.get_by_test_id("retry-button")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "job-dead-lettered")

    page.locator("#retry-reason").fill("upstream is back")
    with page.expect_navigation():
        press_by_keyboard(page, page.get_by_test_id("retry-button"))
    reload_until_status(page, "completed")  # the page after the redirect may lag the view
    expect(timeline).to_contain_text("Redriven")
    expect(timeline).to_contain_text("upstream is back")
    expect(page.get_by_test_id("operator-actions")).to_contain_text("upstream is back")
    assert console.job(job_id)["status"] == "completed"
    assert_accessible(page)
    screenshot(page, "job")


def test_a_redriven_job_completes_on_the_open_page(page: Page, console: Console) -> None:
    job_id = dead_letter(console, f"live-{uuid4().hex[:8]}")
    sign_in(page, console.admin_key, then=f"/ui/jobs/{job_id}")
    with page.expect_navigation():
        page.get_by_test_id("retry-button").click()
    status = page.get_by_test_id("job-status")
    expect(status).not_to_have_text("dead_lettered")
    assert status.inner_text().strip() != "completed"  # its redriven attempt runs 4 s
    url = page.url
    expect(status).to_have_text("completed", timeout=30_000)  # no reload
    assert page.url == url
