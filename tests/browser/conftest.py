"""Fixtures of the browser tests: one Chromium and one running console for this package
(stopped when its last test ends, so nothing idles through the rest of a suite run), a
fresh browser context (no cookies) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import VIEWPORT, chromium
from tests.support.chromium import ChromiumMissing
from tests.support.console_server import Console, running_console

expect.set_options(timeout=15_000)  # the machine is shared: live pages and charts may lag


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """The distribution's Chromium; the test fails (it does not skip) when it is absent."""
    try:
        with chromium() as launched:
            yield launched
    except ChromiumMissing as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """``ledger demo``'s data served by ``ledger serve``, with a worker running."""
    with running_console(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture
def page_errors() -> list[str]:
    """What the test's page reported as broken: script errors, console errors such as a
    Content-Security-Policy violation, and answers of 400 or more (but the favicon's)."""
    return []


@pytest.fixture
def page(browser: Browser, console: Console, page_errors: list[str]) -> Iterator[Page]:
    """A new page in a fresh context (no cookies) whose relative URLs go to the console."""
    context = browser.new_context(base_url=console.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    try:
        opened = context.new_page()
        opened.on("pageerror", lambda error: page_errors.append(f"script: {error}"))
        opened.on("console", lambda message: page_errors.append(f"console: {message.text}")
                  if message.type == "error" and "Failed to load resource" not in message.text
                  else None)
        opened.on("response", lambda answer: page_errors.append(f"{answer.status} {answer.url}")
                  if answer.status >= 400 and not answer.url.endswith("/favicon.ico") else None)
        yield opened
    finally:
        context.close()
