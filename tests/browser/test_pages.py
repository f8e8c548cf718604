"""Every page of the console in Chromium, signed in as an admin: it answers 200, axe-core
finds no serious or critical violation, every control on it is reachable with Tab, and its
screenshot is taken (``docs/img/console-<page>.png`` with LEDGER_SCREENSHOTS=1)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import sign_in
from tests.browser.test_dead_letter_flow import dead_letter
from tests.support.browser import (
    assert_accessible,
    press_by_keyboard,
    screenshot,
    unreachable_by_keyboard,
)
from tests.support.console_server import Console

PAGES = {
    "overview": "/ui",
    "jobs": "/ui/jobs",
    "queues": "/ui/queues",
    "dead-letters": "/ui/dead-letters",
    "views": "/ui/views",
    "audit": "/ui/audit",
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_is_accessible_and_every_control_is_reachable_by_keyboard(
    page: Page, console: Console, page_errors: list[str], name: str
) -> None:
    if name == "dead-letters":
        dead_letter(console, "acme")  # a group to show
    sign_in(page, console.admin_key)
    answer = page.goto(PAGES[name])
    assert answer is not None
    assert answer.status == 200
    if name == "overview":  # the charts are drawn once their series arrive
        expect(page.get_by_test_id("charts").locator(".uplot")).to_be_visible()
    if name != "audit":
        screenshot(page, name)
    assert_accessible(page)
    assert unreachable_by_keyboard(page) == []
    if name == "audit":  # its result, by keyboard
        with page.expect_navigation():
            press_by_keyboard(page, page.get_by_test_id("audit-run"))
        expect(page.get_by_test_id("audit-result")).to_be_visible()
        assert_accessible(page)
        screenshot(page, name)
    assert page_errors == []
