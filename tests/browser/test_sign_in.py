"""Signing in to the console with an API key, in Chromium, by keyboard."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.browser import assert_accessible, screenshot, tab_to
from tests.support.console_server import Console


def test_sign_in_by_keyboard_with_an_admin_key(page: Page, console: Console) -> None:
    page.goto("/ui")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "sign-in")

    tab_to(page, page.get_by_test_id("login-key"))
    page.keyboard.type(console.admin_key)
    tab_to(page, page.get_by_test_id("login-submit"))
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page.get_by_test_id("viewer")).to_contain_text("admin")
    assert page.url.rstrip("/").endswith("/ui")
    (cookie,) = [c for c in page.context.cookies() if c["value"]]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert console.admin_key not in cookie["value"]


def test_a_bad_key_is_refused(page: Page, console: Console) -> None:
    page.goto("/ui/login")
    page.get_by_test_id("login-key").fill("jl_000000000000_" + "x" * 43)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    assert_accessible(page)
    expect(page.get_by_test_id("login-form")).to_be_visible()
    page.goto("/ui/jobs")
    expect(page.get_by_test_id("login-form")).to_be_visible()  # still not signed in
