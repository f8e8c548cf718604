"""Steps the browser flows share: signing in, a form's CSRF token, posting from the page,
the log's head."""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.console_server import Console


def sign_in(page: Page, key: str, then: str = "/ui") -> None:
    """Sign in on the sign-in page with ``key``, then open ``then``."""
    page.goto("/ui/login")
    page.get_by_test_id("login-key").fill(key)
    with page.expect_navigation():
        page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("viewer")).to_be_visible()
    if then != "/ui":
        page.goto(then)


def csrf_token(page: Page) -> str:
    """The CSRF token of the page's forms (every page has the sign-out form)."""
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token, "no CSRF token on the page"
    return token


def post_from_page(page: Page, path: str, fields: dict[str, str]) -> dict[str, Any]:
    """POST a form from the page itself (its cookies, same origin) with fetch; the answer's
    status and text. What a forged form or a script in the page could send."""
    answer: dict[str, Any] = page.evaluate(
        """async ([path, fields]) => {
            const response = await fetch(path, {method: "POST", redirect: "manual",
                body: new URLSearchParams(fields)});
            return {status: response.status, text: await response.text()};
        }""",
        [path, fields],
    )
    return answer


def log_head(console: Console) -> int:
    """The log's head position, as ``ledger projections status`` reads it."""
    views = json.loads(console.cli("projections", "status", "--json").stdout)
    return max(int(view["head"]) for view in views)


def reload_until_status(page: Page, status: str, timeout: float = 30) -> None:
    """Reload the job's page (as a user pressing F5 would) until it shows ``status``."""
    deadline = time.monotonic() + timeout
    shown = page.get_by_test_id("job-status")
    while shown.inner_text().strip() != status:
        assert time.monotonic() < deadline, f"still {shown.inner_text()!r}, not {status!r}"
        page.wait_for_timeout(300)
        page.reload()
