"""Who may act in the console, in Chromium: a staff key reads but cannot act (403, nothing
appended to the log), and a state-changing request without the CSRF token is refused."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.browser.flows import csrf_token, log_head, post_from_page, sign_in
from tests.support.browser import assert_accessible
from tests.support.console_server import Console, wait_until


def quiet_head(console: Console) -> int:
    """The log's head once nothing has been appended for a second (no job running)."""
    head = log_head(console)
    while True:
        time.sleep(1)
        now = log_head(console)
        if now == head:
            return head
        head = now


def test_a_staff_key_reads_but_cannot_act(page: Page, console: Console) -> None:
    job_id = console.enqueue(customer_id="staff-flow", delay_seconds=3600)
    sign_in(page, console.staff_key, then=f"/ui/jobs/{job_id}")
    expect(page.get_by_test_id("viewer")).to_contain_text("staff")
    expect(page.get_by_test_id("job-status")).to_have_text("scheduled")
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.get_by_test_id("cancel-button")).to_have_count(0)
    assert_accessible(page)

    before = quiet_head(console)
    token = csrf_token(page)
    for action in ("cancel", "retry"):
        answer = post_from_page(page, f"/ui/jobs/{job_id}/{action}",
                                {"csrf": token, "reason": "staff tries"})
        assert answer["status"] == 403, answer
    assert log_head(console) == before
    assert console.job(job_id)["status"] == "scheduled"


def test_a_post_without_the_csrf_token_is_refused(page: Page, console: Console) -> None:
    job_id = console.enqueue(customer_id="csrf-flow", delay_seconds=3600)
    sign_in(page, console.admin_key, then=f"/ui/jobs/{job_id}")
    expect(page.get_by_test_id("cancel-button")).to_be_visible()
    for fields in ({"reason": "no token"}, {"csrf": "forged", "reason": "bad token"}):
        answer = post_from_page(page, f"/ui/jobs/{job_id}/cancel", fields)
        assert answer["status"] == 403, answer
    assert console.job(job_id)["status"] == "scheduled"
    answer = post_from_page(page, f"/ui/jobs/{job_id}/cancel",
                            {"csrf": csrf_token(page), "reason": "with the token"})
    assert answer["status"] in (200, 303, 0), answer  # 0: an opaque redirect (manual)
    wait_until(lambda: console.job(job_id)["status"] == "cancelled")
