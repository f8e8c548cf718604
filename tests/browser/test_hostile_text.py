"""Text a client chose, shown by the console in Chromium: markup in a payload, a reason and
a customer's name is shown as written and never runs."""

from __future__ import annotations

from playwright.sync_api import Dialog, Page, expect

from tests.browser.flows import sign_in
from tests.support.browser import assert_accessible
from tests.support.console_server import Console

MARKUP = '<script>alert("s")</script><img src=x onerror="alert(1)">'


def test_markup_from_clients_is_text_on_the_job_and_jobs_pages(
    page: Page, console: Console, page_errors: list[str]
) -> None:
    customer = 'c"><b>bold</b>'
    job_id = console.enqueue(customer_id=customer, delay_seconds=3600,
                             payload={"note": MARKUP})
    with console.api() as http:
        answer = http.post(f"/jobs/{job_id}/cancel", json={"reason": MARKUP})
    assert answer.status_code in (200, 202), answer.text
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    sign_in(page, console.admin_key, then=f"/ui/jobs/{job_id}")
    expect(page.get_by_test_id("job-customer")).to_have_text(customer)
    expect(page.get_by_test_id("timeline")).to_contain_text(MARKUP)
    expect(page.get_by_test_id("operator-actions")).to_contain_text(MARKUP)
    assert page.locator("main img, main b:text('bold')").count() == 0
    assert_accessible(page)
    page.goto(f"/ui/jobs?customer_id={customer}")
    expect(page.get_by_test_id("job-row")).to_contain_text(customer)
    assert dialogs == []
    assert page_errors == []  # nothing ran, and no request for the image ``x`` was made


def test_odd_values_in_a_job_pages_query_are_not_server_errors(
    page: Page, console: Console
) -> None:
    job_id = console.enqueue(customer_id="odd-query", delay_seconds=3600)
    sign_in(page, console.admin_key)
    for query, status in (("at=99999999999999999999", 200), ("at=-1", 200),
                          ("as_of=@99999999999999999999", 400), ("as_of=%00", 400)):
        answer = page.goto(f"/ui/jobs/{job_id}?{query}")
        assert answer is not None
        assert answer.status == status, query
        expect(page.locator("main")).to_be_visible()
