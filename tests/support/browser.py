"""Helpers of the browser tests: launch the distribution's Chromium through Playwright, run
axe-core in a page, reach a control with the keyboard, take the README's screenshots.

Playwright's sync API runs its own event loop (in a greenlet): use it from plain sync tests,
never inside an anyio test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, ViewportSize, sync_playwright

from tests.support.chromium import CHROMIUM_ARGS, find_chromium

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "browser" / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "img"
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@contextmanager
def chromium() -> Iterator[Browser]:
    """Chromium, headless and offline. Playwright gives each launch a fresh, temporary
    user-data directory and removes it on close."""
    executable = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=list(CHROMIUM_ARGS),
            timeout=60_000,
        )
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious or critical violations in ``page`` as it is now.

    The script is evaluated over the DevTools protocol, so the page's Content-Security-
    Policy (no inline scripts) does not stop it and the page needs no change for it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = [node["target"] for node in violation["nodes"][:3]]
        lines.append(f"{violation['impact']} {violation['id']}: {violation['help']} {targets}")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page."""
    found = axe_violations(page)
    assert not found, f"{page.url}:\n{describe(found)}"


def tab_to(page: Page, target: Locator, max_tabs: int = 80) -> None:
    """Press Tab from the top of the page until ``target`` has the focus (fails if it
    never does: the control is not reachable by keyboard)."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    handle = target.element_handle()
    assert handle is not None, f"no element {target}"
    for _ in range(max_tabs):
        page.keyboard.press("Tab")
        if handle.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} not reached after {max_tabs} Tab presses on {page.url}")


def press_by_keyboard(page: Page, target: Locator) -> None:
    """Tab to ``target``, then press Enter on it."""
    tab_to(page, target)
    page.keyboard.press("Enter")


CONTROL_KEY = """element => [element.tagName, element.getAttribute('name'),
    element.getAttribute('value'), element.getAttribute('href'),
    element.getAttribute('data-testid'), (element.textContent || '').trim().slice(0, 60)
].join('|')"""
CONTROLS = (
    "a[href], button:not([disabled]), select:not([disabled]), textarea:not([disabled]), "
    "input:not([type=hidden]):not([disabled]), summary"
)


def unreachable_by_keyboard(page: Page, max_tabs: int = 400) -> list[str]:
    """The page's visible controls (links, buttons, fields, summaries) that pressing Tab
    from the top never focuses."""
    wanted: set[str] = set(page.eval_on_selector_all(
        CONTROLS,
        f"elements => elements.filter(e => e.checkVisibility()).map({CONTROL_KEY})",
    ))
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    seen: set[str] = set()
    for _ in range(min(max_tabs, 3 * len(wanted) + 20)):
        page.keyboard.press("Tab")
        seen.add(page.evaluate(f"({CONTROL_KEY})(document.activeElement)"))
        if wanted <= seen:
            break
    return sorted(wanted - seen)


def screenshot(page: Page, name: str) -> Path | None:
    """``docs/img/console-<name>.png`` of the whole page, only when LEDGER_SCREENSHOTS=1
    (so a test run does not change the tree); the path written, or None."""
    if os.environ.get("LEDGER_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path
