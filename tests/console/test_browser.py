"""A staff member in a real browser against a real daphne: log in, filter to failed
turns, open one, read the audit, retry it (and watch the answer arrive live), take over
and reply. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from conversations.console.benchdata import conversations_generate
from conversations.models import Conversation, Message
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.conftest import wait_turn_finished
from tests.console.conftest import PASSWORD, make_staff
from tests.fake_provider import status, text
from tests.shared_database import database_url

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "console"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chromium() -> Any:
    """Opens Debian's chromium through Playwright. Use it after the test's own database
    work: Playwright's sync API keeps an event loop in this thread, where Django refuses
    synchronous ORM calls."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")

    @contextlib.contextmanager
    def launch() -> Iterator[Any]:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            try:
                yield browser
            finally:
                browser.close()

    return launch


@pytest.fixture
def server(provider: Any, tmp_path: Path) -> Iterator[str]:
    """daphne serving the project on a socket this test bound (port 0), sharing the test
    database and pointed at the fake provider."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SECRET_KEY": "browser-test-secret-key-browser-test-secret-key",
        "DJANGO_DEBUG": "true",
        "SUPPORT_SKIP_DOTENV": "1",
        "SUPPORT_VAR_DIR": str(tmp_path),
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": provider.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "SUPPORT_SWEEP_INTERVAL_SECONDS": "0",
    }
    log = open(tmp_path / "daphne.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "--fd", str(listener.fileno()), "support.asgi:application"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=[listener.fileno()],
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError("daphne exited:\n" + (tmp_path / "daphne.log").read_text())
            try:
                with urllib.request.urlopen(base + "/admin/login/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("daphne did not answer:\n" + (tmp_path / "daphne.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        listener.close()
        log.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_staff_find_audit_retry_take_over_and_reply(default_agent, provider, groups, server, chromium):
    from playwright.sync_api import expect

    make_staff("sam", group="Support agent")
    conversations_generate(agent=default_agent, count=24, items_per_conversation=4, prefix="demo")
    provider.queue(status(500, "upstream overloaded"), status(500, "upstream overloaded"))
    conversation = conversation_create(
        channel="widget", customer_kind="user", customer_id="ada-42", customer_name="Ada Lovelace",
        customer_email="ada@example.com",
    )
    failed = wait_turn_finished(message_post(conversation=conversation, text="Where is my order 1001?").turn.pk)
    assert failed.status == "failed"
    failed_count = Conversation.objects.filter(has_failed_turn=True).count()
    answer_text = "Good news: order 1001 shipped yesterday with UPS."
    reply_text = "Hi Ada, Sam here. I'll keep an eye on the delivery for you."

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(server + "/admin/login/?next=/admin/conversations/conversation/")
        page.fill("#id_username", "sam")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#result_list")).to_be_visible()
        _shot(page, "01-conversation-list")

        page.locator('details[data-filter-title="failed turn"] a', has_text="Yes").click()
        page.wait_for_url("**has_failed_turn__exact=1**")
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(failed_count)
        expect(rows.filter(has_text="Ada Lovelace")).to_have_count(1)
        _shot(page, "02-filtered-to-failed-turns")

        page.get_by_role("link", name="Ada Lovelace").click()
        expect(page.locator(".cs-head h1")).to_have_text("Ada Lovelace")
        expect(page.locator("#cs-live-state")).to_have_text("live")
        expect(page.locator("#cs-failed")).to_contain_text("upstream overloaded")
        expect(page.locator("[data-state=failed]")).to_be_visible()
        _shot(page, "03-conversation-with-failed-turn")

        page.locator("#cs-failed a", has_text="Attempt 1").click()
        expect(page.locator("#cs-turn-error")).to_contain_text("upstream overloaded")
        expect(page.locator("#cs-attempts tbody tr")).to_have_count(1)
        expect(page.locator(".cs-request-body").first).to_contain_text('"role": "user"')
        _shot(page, "04-turn-audit")

        provider.queue(text(answer_text, delta_delay=0.05))
        page.get_by_role("button", name="Retry this turn").click()
        expect(page.locator(".messagelist")).to_contain_text("attempt 2 is queued")
        answer = page.locator(".cs-item.cs-assistant:not(.cs-streaming) .cs-text")
        expect(answer).to_have_text(answer_text, timeout=20_000)
        expect(page.locator(".cs-attempt").nth(1)).to_contain_text("Completed")
        expect(page.locator(".cs-attempt").nth(1)).to_contain_text("attempt 2")
        expect(page.locator("[data-state=failed]")).to_be_hidden()
        _shot(page, "05-retried-answer-arrived-live")

        page.get_by_role("button", name="Take over (pause AI)").click()
        expect(page.locator("[data-state=paused]")).to_be_visible()
        expect(page.get_by_role("button", name="Hand back to AI")).to_be_visible()
        page.fill("#cs-reply", reply_text)
        page.get_by_role("button", name="Send reply").click()
        expect(page.locator(".cs-item.cs-staff .cs-text")).to_have_text(reply_text)
        _shot(page, "06-taken-over-and-replied")

    conversation.refresh_from_db()
    assert conversation.ai_paused and not conversation.has_failed_turn
    items = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("kind", "text"))
    assert [kind for kind, _ in items] == ["user", "assistant", "staff"]
    assert items[1][1] == answer_text and items[2][1] == reply_text
