"""The dashboard in a real browser: it renders its charts from the project alone (no
request leaves the site), links the slowest turns to their audit, and is captured as
test-artifacts/dashboard.png for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from conversations.ops.sample_data import generate

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


@pytest.mark.django_db(transaction=True)
def test_dashboard_renders_in_a_browser_and_is_screenshotted(live_server):
    from playwright.sync_api import sync_playwright

    # All database work happens before Playwright starts its event loop in this thread.
    generate(turns=2500, days=30, seed=5)
    get_user_model().objects.create_superuser("lead", "lead@example.com", "pw-lead-12345")
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "lead")
            page.fill("#id_password", "pw-lead-12345")
            page.click("input[type=submit]")
            page.click("text=Dashboard")  # linked from the admin index
            page.wait_for_selector("#ops-dashboard")

            assert page.title().startswith("Operations dashboard")
            assert page.locator("figure.ops-chart").count() == 8
            assert page.locator("figure.ops-chart svg.ops-svg").count() == 8
            assert page.locator(".ops-tile").count() == 9  # CSAT is the ninth
            assert page.locator(".ops-tile-value").first.inner_text() != "0"
            # The charts fit the laptop-width page: no horizontal scrolling.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            page.click("text=Last 7 days")
            page.wait_for_selector("text=7 days,")
            assert page.locator("#ops-daily tbody tr").count() == 8  # 7 days and the total

            first_slow = page.locator("#ops-slowest tbody a").first
            turn_short = first_slow.inner_text()
            with page.expect_navigation() as navigation:
                first_slow.click()
            assert navigation.value.status == 200 and turn_short in page.url  # the turn's audit

            outside = [url for url in requested if not url.startswith(live_server.url)]
            assert outside == [], f"requests left the site: {outside}"
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 50_000
