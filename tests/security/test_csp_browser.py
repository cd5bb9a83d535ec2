"""The Content-Security-Policy in a real browser (Debian's chromium via Playwright): every
page of the platform, logged in as staff, loads with no CSP violation (no inline script,
handler or style is left), and the widget works on a customer page with a strict policy
of its own that allows nothing but the platform."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import CHROMIUM, new_context
from tests.widget.server import DaphneServer, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install chromium"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
expect.set_options(timeout=20_000)

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' @' + e.lineNumber), true);
"""
HOST_PORT = free_port()
HOST_ORIGIN = f"http://localhost:{HOST_PORT}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    daphne = DaphneServer(tmp_path_factory.mktemp("csp-server"), env={
        "SUPPORT_OFFLINE_WORD_DELAY": "0", "SUPPORT_WIDGET_ORIGINS": HOST_ORIGIN,
    })
    daphne.prepare()
    daphne.start()
    yield daphne
    daphne.stop()



@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = new_context(browser, viewport={"width": 1280, "height": 800})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.console_messages = []  # type: ignore[attr-defined]
    page.on("console", lambda message: page.console_messages.append(message.text))
    yield page
    context.close()


def _violations(page: Any) -> list[str]:
    recorded = page.evaluate("window.__csp || []")
    refused = [m for m in page.console_messages if "Content Security Policy" in m]
    return recorded + refused


def _conversation_with_a_turn(server: DaphneServer) -> tuple[str, str]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        session = client.post("/widget/session", json={}).json()
        answer = client.post(
            f"/api/v1/conversations/{session['conversation']}/messages?wait=20",
            json={"text": "Where is order 1001? My email is ada@example.com"},
            headers={"Authorization": f"Visitor {session['token']}"},
        )
        assert answer.status_code in (200, 201), answer.text
        turn = answer.json()["turn"]["id"]
    return session["conversation"], turn


def test_every_platform_page_passes_the_policy(server, page):
    conversation, turn = _conversation_with_a_turn(server)
    page.goto(server.base_url + "/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", server.admin_password())
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    paths = [
        "/admin/",
        "/admin/conversations/conversation/",
        f"/admin/conversations/conversation/{conversation}/change/",
        f"/admin/conversations/turn/{turn}/change/",
        "/admin/conversations/agent/1/change/",
        "/admin/knowledge/document/1/change/",
        "/admin/knowledge/document/add/",
        "/admin/ops/dashboard/",
        "/admin/apikeys/apikey/add/",
        "/api/docs/",
        "/",
        "/widget/docs/",
        "/help/",
        "/help/1/",  # a demo article (published): redirects to its page
        "/admin/conversations/staffprofile/add/",
    ]
    seen = {}
    for path in paths:
        response = page.goto(server.base_url + path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        if path == "/api/docs/":
            expect(page.locator(".opblock").first).to_be_visible()
        seen[path] = _violations(page)
    assert {path: v for path, v in seen.items() if v} == {}


class _HostPage(http.server.BaseHTTPRequestHandler):
    """A customer's page that allows nothing but the platform's script and connections."""

    platform = ""

    def do_GET(self) -> None:
        body = (f'<!doctype html><html><head><title>Strict shop</title></head><body><h1>Shop</h1>'
                f'<script src="{self.platform}/static/widget/widget.js" async></script></body></html>').encode()
        ws = self.platform.replace("http://", "ws://")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy",
                         f"default-src 'none'; script-src {self.platform}; connect-src {self.platform} {ws}; "
                         "style-src 'none'; img-src 'none'; base-uri 'none'")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_widget_works_on_a_page_with_a_strict_policy(server, page):
    _HostPage.platform = server.base_url
    host = http.server.ThreadingHTTPServer(("127.0.0.1", HOST_PORT), _HostPage)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    try:
        page.goto(HOST_ORIGIN + "/")
        widget = page.locator("support-chat")
        widget.get_by_role("button", name="Open chat").click()
        box = widget.locator("textarea")
        box.fill("hello")
        box.press("Enter")
        expect(widget.locator(".log li.assistant").last).to_be_visible()
        assert widget.locator(".log li.assistant").last.text_content().strip()
        assert _violations(page) == []
    finally:
        host.shutdown()
        host.server_close()
