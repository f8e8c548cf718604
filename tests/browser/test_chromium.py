"""The browser under the console tests: the distribution's Chromium, offline, with
axe-core injected despite a strict Content-Security-Policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Route

from tests.support.browser import axe_violations, press_by_keyboard
from tests.support.chromium import ChromiumMissing, find_chromium

STRICT_PAGE = """<!doctype html><html><head><title>t</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self'">
</head><body><main><h1>t</h1><img src="x.png"><form method="post">
<button type="submit" id="go">Go</button></form></main></body></html>"""


def test_a_missing_chromium_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(ChromiumMissing, match="apt-get install -y chromium chromium-driver"):
        find_chromium()


def test_axe_runs_under_a_strict_csp_and_finds_a_critical_violation(browser: Browser) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        posted: list[str] = []

        def answer(route: Route) -> None:
            posted.append(route.request.method)
            route.fulfill(status=200, content_type="text/html", body=STRICT_PAGE)

        page.route("http://console.test/**", answer)
        page.goto("http://console.test/")
        found = {violation["id"] for violation in axe_violations(page)}
        assert "image-alt" in found  # an image without alt text is critical
        with page.expect_navigation():
            press_by_keyboard(page, page.locator("#go"))
        assert posted.count("POST") == 1
    finally:
        context.close()
