"""Every page of the console in Chromium, signed in as an admin: it answers 200, axe-core
finds no serious or critical violation, every control on it is reachable with Tab, and its
screenshot is taken (``docs/img/console-<page>.png`` with LEDGER_SCREENSHOTS=1)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import sign_in
from tests.support.browser import assert_accessible, screenshot, unreachable_by_keyboard
from tests.support.console_server import Console

PAGES = {
    "overview": "/ui",
    "jobs": "/ui/jobs",
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_is_accessible_and_every_control_is_reachable_by_keyboard(
    page: Page, console: Console, name: str
) -> None:
    sign_in(page, console.admin_key)
    answer = page.goto(PAGES[name])
    assert answer is not None
    assert answer.status == 200
    if name == "overview":  # the charts are drawn once their series arrive
        expect(page.get_by_test_id("charts").locator(".uplot")).to_be_visible()
    screenshot(page, name)
    assert_accessible(page)
    assert unreachable_by_keyboard(page) == []
