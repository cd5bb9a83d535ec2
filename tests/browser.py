"""Debian's chromium under Playwright, for the browser tests: where it is, how it is
launched (no sandbox, no GPU, nothing fetched from the network), and the shared fixtures
(`browser` per module, `context` per test at a desktop viewport, reported online
whatever the machine's network), which tests/conftest.py
makes available to every test (`pytest_plugins`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
HAS_CHROMIUM = Path(CHROMIUM).exists()
# Chromium derives navigator.onLine from the machine's network interfaces: on a machine
# with loopback only it is false, and the widget (rightly) says "You are offline". The
# pages under test live on 127.0.0.1, so every context reports the browser online; a
# test about the browser's own network state sets `window.__browserOffline`.
REPORT_ONLINE = """
Object.defineProperty(Navigator.prototype, 'onLine', {
  configurable: true,
  get() { return window.__browserOffline !== true; },
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def new_context(browser: Any, **options: Any) -> Any:
    """A browser context that reports itself online (see REPORT_ONLINE)."""
    ctx = browser.new_context(**options)
    ctx.add_init_script(REPORT_ONLINE)
    return ctx


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = new_context(browser, viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()
