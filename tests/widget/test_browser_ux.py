"""What a customer notices in the widget, in a real browser: page views cost nothing, who
answers is said once (and honestly), times, delivered and read, the launcher and the
panel across pages, and the composer. Against a daphne whose site shows no provenance
(SUPPORT_WIDGET_PROVENANCE=off), answering with the offline model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, new_context
from tests.widget.server import DaphneServer
from tests.widget.test_browser import ARTIFACTS, ROOT, Widget, staff_socket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

COUNT_WIDGET_CONVERSATIONS = (
    "from conversations.models import Conversation; "
    "print(Conversation.objects.filter(channel='widget').count())"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    daphne = DaphneServer(
        tmp_path_factory.mktemp("widget-ux-server"),
        env={"SUPPORT_OFFLINE_WORD_DELAY": "0.01", "SUPPORT_WIDGET_PROVENANCE": "off"},
    )
    daphne.prepare()
    daphne.start()
    yield daphne
    daphne.stop()


def widget_conversations(server: DaphneServer) -> int:
    return int(server.manage("shell", "-v0", "-c", COUNT_WIDGET_CONVERSATIONS).strip().splitlines()[-1])


def test_page_views_and_opening_the_widget_create_no_conversation_until_the_customer_writes(server, context):
    before = widget_conversations(server)
    page = context.new_page()
    sessions: list[str] = []
    page.on("request", lambda request: sessions.append(request.url) if "/widget/session" in request.url else None)
    for _ in range(5):
        page.goto(server.base_url + "/")
        expect(page.locator("support-chat").locator("button.launcher")).to_be_visible()
    widget = Widget(page, server)
    widget.open()
    expect(widget.root.locator(".status")).to_have_text("")
    assert sessions == [] and widget.stored() is None
    assert widget_conversations(server) == before  # five page views and an open panel: nothing stored

    widget.send("hello")
    expect(widget.answers()).to_have_count(1)
    assert len(sessions) == 1 and widget.stored()["conversation"]
    assert widget_conversations(server) == before + 1

    page.reload()  # resuming: one session call with the token, the history at once
    expect(widget.answers()).to_have_count(1)
    assert len(sessions) == 2
    assert widget_conversations(server) == before + 1


def test_asking_for_a_person_first_starts_the_conversation(server, context):
    widget = Widget.visit(context, server)
    widget.open()
    widget.root.get_by_role("button", name="Talk to a person").click()
    expect(widget.root.locator(".banner")).to_have_text("A person will reply here.")
    assert widget.stored()["conversation"]


def test_provenance_is_said_once_and_the_offline_model_always_says_what_it_is(server, context):
    widget = Widget.visit(context, server)
    widget.open()
    expect(widget.root.locator("header .model")).to_have_text("")  # no conversation yet: nothing to say
    widget.send("hello")
    widget.send("How long does shipping take?")
    expect(widget.answers()).to_have_count(2)
    # The site shows no provenance, but the offline model is never passed off as a real one.
    expect(widget.root.locator("header .model")).to_have_text(
        "Answers by Offline demo model (no AI provider configured)"
    )
    expect(widget.root.locator(".msg.assistant .caption")).to_have_count(0)  # not under every answer
    widget.page.reload()
    expect(widget.answers()).to_have_count(2)
    expect(widget.root.locator(".caption")).to_have_count(0)


def test_times_delivered_and_read_by_the_assistant_or_when_staff_open_it(server, browser, context):
    widget = Widget.visit(context, server)
    widget.open()
    widget.send("hello")
    expect(widget.answers()).to_have_count(1)
    first = widget.root.locator(".msg.user").first
    expect(first.locator(".receipt")).to_have_text("Read")  # the assistant started on it
    stamp = first.locator("time")
    expect(stamp).to_have_text("just now")
    exact = stamp.get_attribute("data-exact")
    assert exact and re.search(r"\d{1,2}:\d{2}", exact), exact
    assert stamp.get_attribute("title") == exact
    assert stamp.get_attribute("aria-label") == f"just now, {exact}"
    expect(widget.answers().first.locator("xpath=..").locator("time")).to_have_text("just now")
    stamp.focus()  # the exact time shows on keyboard focus too, not only on hover
    tooltip = widget.page.evaluate(
        f"getComputedStyle({ROOT}.querySelector('.msg.user time'), '::after').content"
    )
    assert tooltip == f'"{exact}"'

    widget.root.get_by_role("button", name="Talk to a person").click()  # the AI pauses
    expect(widget.root.locator(".banner")).to_have_text("A person will reply here.")
    widget.send("Are you there?")
    second = widget.root.locator(".msg.user").nth(1)
    expect(second.locator(".receipt")).to_have_text("Delivered")

    staff_context, _ = staff_socket(browser, server, widget.stored()["conversation"])
    try:
        expect(second.locator(".receipt")).to_have_text("Read")  # a staff member opened it
        widget.page.reload()  # and it stays read
        expect(widget.root.locator(".msg.user").nth(1).locator(".receipt")).to_have_text("Read")
    finally:
        staff_context.close()


def test_launcher_icon_unread_badge_and_the_panel_staying_open_across_pages(server, browser, context):
    widget = Widget.visit(context, server)
    launcher = widget.root.locator("button.launcher")
    assert launcher.get_attribute("data-icon") == "chat"
    widget.open()
    expect(launcher).to_have_attribute("data-icon", "close")  # a close icon while open
    expect(launcher).to_have_attribute("aria-label", "Close chat")
    widget.send("hello")
    expect(widget.answers()).to_have_count(1)

    widget.page.get_by_role("link", name="Pour-over kettle").click()  # another page of the shop
    widget.page.wait_for_url(re.compile(r"product=pour-over-kettle"))
    expect(widget.root.locator("section.panel")).to_be_visible()
    expect(widget.answers()).to_have_count(1)
    expect(launcher).to_have_attribute("data-icon", "close")
    launcher.click()
    expect(widget.root.locator("section.panel")).to_be_hidden()
    expect(launcher).to_have_attribute("data-icon", "chat")
    widget.page.reload()
    expect(widget.answers()).to_have_count(1)
    expect(widget.root.locator("section.panel")).to_be_hidden()  # closed stays closed

    widget.root.get_by_role("button", name=re.compile("^Open chat")).click()
    widget.root.get_by_role("button", name="Talk to a person").click()
    # the handoff is shown (so it is read) before the panel closes
    expect(widget.root.locator(".banner")).to_have_text("A person will reply here.")
    widget.page.keyboard.press("Escape")
    staff_context, staff = staff_socket(browser, server, widget.stored()["conversation"])
    try:
        staff.evaluate("""() => window.staffSocket.send(JSON.stringify(
            {type: 'message', text: 'Hello from the team.', client_id: 'staff-ux-1'}))""")
        expect(widget.root.locator(".badge")).to_have_text("1")
        expect(launcher).to_have_attribute("aria-label", "Open chat, 1 unread")
    finally:
        staff_context.close()


def test_shift_enter_is_a_new_line_and_the_count_shows_near_the_limit(server, context):
    widget = Widget.visit(context, server)
    widget.open()
    box = widget.root.locator("textarea")
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    expect(widget.root.locator(".msg.user")).to_have_count(0)  # nothing sent yet
    count = widget.root.locator(".count")
    expect(count).to_be_hidden()
    box.press("Enter")
    expect(widget.root.locator(".msg.user .bubble")).to_have_text("first line\nsecond line")
    expect(widget.answers()).to_have_count(1)

    box.fill("x" * 6500)
    expect(count).to_have_text("6,500 / 8,000 characters")
    assert box.get_attribute("aria-describedby") == "count"
    box.fill("x" * 9000)  # maxlength: the box keeps 8,000
    expect(count).to_have_text("8,000 / 8,000 characters")
    assert "at-limit" in (count.get_attribute("class") or "")
    box.fill("short")
    expect(count).to_be_hidden()


def test_screenshots_with_times_and_read_state_on_desktop_and_phone(server, browser, context):
    ARTIFACTS.mkdir(exist_ok=True)
    desktop = Widget.visit(context, server)
    desktop.open()
    desktop.send("Where is order 1001? My email is ada@example.com")
    expect(desktop.answers()).to_have_count(1)
    desktop.root.locator(".msg.user time").first.focus()  # the exact time's tooltip
    desktop.page.screenshot(path=str(ARTIFACTS / "widget-ux-desktop.png"))

    phone_context = new_context(
        browser, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        phone = Widget.visit(phone_context, server)
        phone.open()
        phone.send("How long does shipping take?")
        expect(phone.answers()).to_have_count(1)
        phone.root.locator("textarea").fill("y" * 6600)
        phone.page.screenshot(path=str(ARTIFACTS / "widget-ux-phone.png"))
    finally:
        phone_context.close()
