"""The widget in a real browser (Debian's chromium via Playwright) against a real daphne
server in a subprocess, answering with the offline model (streamed word by word)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, LAUNCH_ARGS, new_context  # noqa: F401 (other modules import them from here)
from tests.widget.server import BASE_DIR, DaphneServer

ARTIFACTS = BASE_DIR / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install chromium (.ci/run does)"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
expect.set_options(timeout=20_000)

ROOT = "document.querySelector('support-chat').shadowRoot"
TRANSCRIPT_JS = f"""() => [...{ROOT}.querySelectorAll('.log > li:not(.greeting)')].map(li =>
    [li.classList[0], li.classList[1] || '', (li.querySelector('.bubble, .label, p') || li).textContent].join('|'))"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    daphne = DaphneServer(
        tmp_path_factory.mktemp("widget-server"),
        env={
            "SUPPORT_OFFLINE_WORD_DELAY": "0.04",  # slow enough to watch the text grow (and to crash mid-answer)
            "SUPPORT_TURN_LEASE_SECONDS": "3",  # a turn killed with the server fails soon
            "SUPPORT_SWEEP_INTERVAL_SECONDS": "0.5",
        },
    )
    daphne.prepare()
    daphne.start()
    yield daphne
    daphne.stop()




class Widget:
    """The embedded widget as a visitor uses it, through its Shadow DOM."""

    def __init__(self, page: Any, server: DaphneServer) -> None:
        self.page = page
        self.server = server
        self.root = page.locator("support-chat")

    @classmethod
    def visit(cls, context: Any, server: DaphneServer) -> Widget:
        page = context.new_page()
        page.goto(server.base_url + "/")
        return cls(page, server)

    @classmethod
    def answered(cls, context: Any, server: DaphneServer, text: str = "hello") -> Widget:
        """A visitor who opened the widget, wrote `text` and got the first answer."""
        widget = cls.visit(context, server)
        widget.open()
        widget.send(text)
        expect(widget.answers()).to_have_count(1)
        return widget

    def open(self) -> None:
        self.root.get_by_role("button", name=re.compile("^Open chat")).click()
        expect(self.root.locator("section.panel")).to_be_visible()

    def send(self, text: str) -> None:
        box = self.root.locator("textarea")
        box.fill(text)
        box.press("Enter")

    def answers(self) -> Any:
        return self.root.locator(".msg.assistant:not(.streaming) .bubble")

    def transcript(self) -> list[str]:
        return self.page.evaluate(TRANSCRIPT_JS)

    def stored(self) -> dict[str, Any]:
        key = f"support-chat:v1:{self.server.base_url}"
        return json.loads(self.page.evaluate(f"localStorage.getItem({json.dumps(key)})") or "null")

    def active_element(self) -> str:
        return self.page.evaluate(f"(() => {{ const a = {ROOT}.activeElement; return a ? a.tagName + '.' + a.className : '' }})()")


def staff_login(browser: Any, server: DaphneServer) -> Any:
    """A browser context and page of the logged-in staff member `admin`."""
    staff_context = new_context(browser)
    staff = staff_context.new_page()
    staff.goto(server.base_url + "/admin/login/")
    staff.fill("#id_username", "admin")
    staff.fill("#id_password", server.admin_password())
    staff.click("input[type=submit]")
    staff.wait_for_url(re.compile(r"/admin/$"))
    return staff_context, staff


def staff_socket(browser: Any, server: DaphneServer, conversation_id: str) -> Any:
    """A logged-in staff member with the conversation open (its live view's socket)."""
    staff_context, staff = staff_login(browser, server)
    staff.evaluate("""async (id) => {
        const ws = new WebSocket(`ws://${location.host}/ws/conversations/${id}/`);
        await new Promise((resolve, reject) => {
            ws.onmessage = (e) => { if (JSON.parse(e.data).type === 'caught_up') resolve(); };
            ws.onclose = (e) => reject(new Error('closed ' + e.code));
        });
        window.staffSocket = ws;
    }""", conversation_id)
    return staff_context, staff


def test_a_reply_streams_in_tools_show_in_words_history_survives_reload_and_can_start_over(server, context):
    widget = Widget.visit(context, server)
    widget.open()
    assert widget.active_element() == "TEXTAREA."  # focus moved into the panel
    widget.page.evaluate(f"""() => {{
        window.__lengths = [];
        new MutationObserver(() => {{
            const s = {ROOT}.querySelector('.msg.streaming .bubble');
            if (s) window.__lengths.push(s.textContent.length);
        }}).observe({ROOT}, {{subtree: true, childList: true, characterData: true}});
    }}""")
    widget.send("hello")
    expect(widget.answers()).to_have_count(1)
    grown = widget.page.evaluate("window.__lengths")
    assert len(set(grown)) >= 5 and grown == sorted(grown), grown  # it grew, piece by piece
    expect(widget.answers().first).to_contain_text("Hello! I'm the offline demo assistant")
    # Who answered is said once, in the header (issue 21), not under every answer.
    expect(widget.root.locator(".msg.assistant .caption")).to_have_count(0)
    expect(widget.root.locator("header .model")).to_contain_text("Offline demo model")

    widget.send("Where is order 1001? My email is ada@example.com")
    expect(widget.root.locator(".tool.ok .label")).to_have_text("Looked up order 1001")
    expect(widget.answers()).to_have_count(2)
    expect(widget.answers().nth(1)).to_contain_text("Order 1001 is shipped")
    before = widget.transcript()
    assert [line.split("|")[:2] for line in before] == [
        ["msg", "user"], ["msg", "assistant"], ["msg", "user"], ["tool", "ok"], ["msg", "assistant"],
    ]

    widget.page.keyboard.press("Escape")
    expect(widget.root.locator("section.panel")).to_be_hidden()
    assert widget.active_element().startswith("BUTTON.launcher")  # focus returns to the launcher

    widget.page.reload()
    expect(widget.answers()).to_have_count(2)
    assert widget.transcript() == before
    first = widget.stored()

    widget.open()
    widget.root.get_by_role("button", name="New conversation").click()
    expect(widget.root.locator(".msg")).to_have_count(0)
    expect(widget.root.locator(".log")).to_contain_text("New conversation started.")
    widget.send("hello")
    expect(widget.answers()).to_have_count(1)
    second = widget.stored()
    assert second["conversation"] != first["conversation"]
    widget.page.reload()
    expect(widget.answers()).to_have_count(1)
    assert [line.split("|")[1] for line in widget.transcript()] == ["user", "assistant"]


def test_markup_in_messages_is_shown_as_text_and_never_runs(server, context):
    widget = Widget.visit(context, server)
    dialogs: list[str] = []
    widget.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    widget.open()
    attacks = [
        "<img src=x onerror=alert(1)>",
        "<script>alert(2)</script> and <b>bold</b>",
        "see https://example.com/help. and javascript:alert(3)",
    ]
    for text in attacks:
        widget.send(text)
    expect(widget.answers()).to_have_count(3)  # the server stored and answered all three
    users = widget.root.locator(".msg.user .bubble")
    expect(users).to_have_text(attacks)
    assert widget.page.evaluate(f"{ROOT}.querySelectorAll('.log img, .log script, .log b').length") == 0
    links = widget.page.evaluate(f"[...{ROOT}.querySelectorAll('.log .bubble a')].map(a => a.href)")  # in the text (citations aside)
    assert links == ["https://example.com/help"]
    widget.page.reload()  # and again when the history is drawn from the server
    expect(widget.root.locator(".msg.user .bubble")).to_have_text(attacks)
    assert widget.page.evaluate(f"{ROOT}.querySelectorAll('.log img, .log script, .log b').length") == 0
    assert dialogs == []


def test_another_browser_cannot_open_the_first_visitors_conversation(server, browser, context):
    first = Widget.visit(context, server)
    first.open()
    first.send("My secret is 42")
    expect(first.answers()).to_have_count(1)
    victim = first.stored()

    other_context = new_context(browser)
    try:
        other = Widget.visit(other_context, server)
        expect(other.root.locator("section.panel")).to_be_attached()
        other.open()
        other.send("hello")  # the conversation starts with the first message (issue 21)
        expect(other.answers()).to_have_count(1)
        own = other.stored()
        assert own["conversation"] != victim["conversation"]
        probe = other.page.evaluate("""async ({victimId, ownToken}) => {
            const forged = await fetch('/widget/session', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                           body: JSON.stringify({token: 'forged.' + victimId})});
            const code = await new Promise((resolve) => {
                const ws = new WebSocket(`ws://${location.host}/ws/conversations/${victimId}/?token=${encodeURIComponent(ownToken)}`);
                ws.onclose = (e) => resolve(e.code);
            });
            return {forged: forged.status, ws: code};
        }""", {"victimId": victim["conversation"], "ownToken": own["token"]})
        assert probe == {"forged": 404, "ws": 4404}

        # Planting the victim's id with a made-up token yields a fresh conversation.
        key = f"support-chat:v1:{server.base_url}"
        planted = json.dumps({"conversation": victim["conversation"], "token": "made-up"})
        other.page.evaluate(f"localStorage.setItem({json.dumps(key)}, {json.dumps(planted)})")
        other.page.reload()
        other.page.wait_for_function(  # forgotten, and nothing stored until the visitor writes
            f"() => localStorage.getItem({json.dumps(key)}) === null"
        )
        expect(other.root.locator(".msg")).to_have_count(0)
        expect(other.root.locator("section.panel")).to_be_visible()  # it was open in this tab
        expect(other.root.locator(".log")).to_contain_text("no longer available")
        other.send("hello again")
        other.page.wait_for_function(
            f"() => {{ const v = JSON.parse(localStorage.getItem({json.dumps(key)})); return v && v.token !== 'made-up'; }}"
        )
        assert other.stored()["conversation"] not in (victim["conversation"], own["conversation"])
        expect(other.root.locator(".msg.user")).to_have_count(1)
        assert "secret" not in other.page.evaluate(f"{ROOT}.textContent")
    finally:
        other_context.close()


def test_handoff_and_a_staff_reply_arrive_live_with_an_unread_badge(server, browser, context):
    visitor = Widget.answered(context, server)
    visitor.root.get_by_role("button", name="Talk to a person").click()
    expect(visitor.root.locator(".banner")).to_have_text("A person will reply here.")
    expect(visitor.root.get_by_role("button", name="Talk to a person")).to_be_hidden()
    visitor.page.keyboard.press("Escape")
    conversation_id = visitor.stored()["conversation"]

    staff_context, staff = staff_socket(browser, server, conversation_id)
    try:
        staff.evaluate("() => window.staffSocket.send(JSON.stringify({type: 'typing'}))")
        expect(visitor.root.locator(".typing")).to_have_text("admin is typing…")
        staff.evaluate("""() => window.staffSocket.send(JSON.stringify(
            {type: 'message', text: 'Hi, this is the support team. Checking now.', client_id: 'staff-1'}))""")

        launcher = visitor.root.locator("button.launcher")
        expect(launcher).to_have_attribute("aria-label", "Open chat, 1 unread")
        expect(visitor.root.locator(".badge")).to_have_text("1")
        expect(visitor.root.locator("[aria-live]")).to_contain_text(
            "admin (support team): Hi, this is the support team. Checking now."
        )
        visitor.open()
        expect(visitor.root.locator(".badge")).to_be_hidden()
        staff_line = visitor.root.locator(".msg.staff")
        expect(staff_line.locator(".bubble")).to_have_text("Hi, this is the support team. Checking now.")
        expect(staff_line.locator(".who")).to_have_text("admin (support team)")
        expect(visitor.root.locator(".banner")).to_have_text("You are chatting with our support team.")
    finally:
        staff_context.close()


def test_typing_shows_both_ways_between_the_console_reply_box_and_the_widget(server, browser, context):
    # Given a customer talking to a person, and the staff member on the console page
    visitor = Widget.answered(context, server)
    visitor.root.get_by_role("button", name="Talk to a person").click()
    expect(visitor.root.locator(".banner")).to_have_text("A person will reply here.")
    conversation_id = visitor.stored()["conversation"]
    staff_context, staff = staff_login(browser, server)
    try:
        staff.goto(f"{server.base_url}/admin/conversations/conversation/{conversation_id}/change/")
        expect(staff.locator("#cs-live-state")).to_have_text("live")
        typing_line = visitor.root.locator(".typing")

        # When staff type a reply, the customer sees who is writing; emptied, it goes
        staff.locator("#cs-reply").press_sequentially("Let me check")
        expect(typing_line).to_have_text("admin is typing…")
        staff.locator("#cs-reply").fill("")
        expect(typing_line).to_have_text("")
        # An internal note is never announced to the customer
        staff.locator("#cs-note").press_sequentially("Customer seems upset")
        visitor.page.wait_for_timeout(500)
        expect(typing_line).to_have_text("")

        # When the customer types, the console shows it until their message arrives
        visitor.root.locator("textarea").press_sequentially("one more thing")
        customer_typing = staff.locator("#cs-typing")
        expect(customer_typing).to_be_visible()
        expect(customer_typing).to_contain_text("is typing…")
        visitor.root.locator("textarea").press("Enter")
        expect(staff.locator("#cs-items")).to_contain_text("one more thing")
        expect(customer_typing).to_be_hidden()
    finally:
        staff_context.close()


def test_screenshots_of_the_open_widget_on_desktop_and_phone(server, browser, context):
    ARTIFACTS.mkdir(exist_ok=True)
    desktop = Widget.visit(context, server)
    desktop.open()
    desktop.send("Where is order 1001? My email is ada@example.com")
    expect(desktop.answers()).to_have_count(1)
    panel = desktop.root.locator("section.panel").bounding_box()
    assert panel["width"] <= 380 and panel["x"] + panel["width"] <= 1280 and panel["y"] >= 0
    desktop.page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"))

    phone_context = new_context(
        browser, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        phone = Widget.visit(phone_context, server)
        phone.open()
        phone.send("How long does shipping take?")
        expect(phone.answers()).to_have_count(1)
        box = phone.root.locator("section.panel").bounding_box()
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)  # full screen
        phone.page.screenshot(path=str(ARTIFACTS / "widget-phone.png"))
    finally:
        phone_context.close()


STAFF_REPLY_WHILE_DOWN = """
from django.contrib.auth import get_user_model
from conversations.models import Conversation
from conversations.services.conversations import conversation_hand_back
from conversations.services.messages import staff_reply_post
conversation = Conversation.objects.get(pk="{id}")
staff_reply_post(conversation=conversation, actor=get_user_model().objects.get(username="admin"),
                 text="Stored while the server was down.")
conversation_hand_back(conversation=conversation)
"""


def test_the_widget_reconnects_after_a_server_crash_and_catches_up_without_loss_or_duplicates(server, context):
    widget = Widget.visit(context, server)
    widget.open()
    widget.send("hello")
    expect(widget.answers()).to_have_count(1)

    widget.send("hi there")  # a long streamed answer; the server dies half way
    expect(widget.root.locator(".msg.streaming .bubble")).to_contain_text("demo")
    server.kill()
    expect(widget.root.locator(".status")).to_have_text("Connection lost. Reconnecting…")
    expect(widget.root.locator(".msg.streaming")).to_have_count(0)  # half an answer is not an answer

    widget.send("Sent while offline")
    expect(widget.root.locator(".msg.pending .note")).to_have_text("Sending…")
    server.manage("shell", "-c", STAFF_REPLY_WHILE_DOWN.format(id=widget.stored()["conversation"]))
    server.start()

    expect(widget.root.locator(".msg.staff .bubble")).to_have_text("Stored while the server was down.")
    expect(widget.root.locator(".status")).to_have_text("")
    expect(widget.root.locator(".msg.pending")).to_have_count(0)
    # The turn that died with the server fails honestly once its lease expires; retry it.
    problem = widget.root.locator(".problem")
    expect(problem).to_contain_text("the server restarted")
    problem.get_by_role("button", name="Try again").click()
    expect(problem).to_have_count(0)
    expect(widget.answers()).to_have_count(3)  # hello, the offline message, and the retried one
    expect(widget.root.locator(".typing")).to_have_text("")

    live = widget.transcript()
    users = [line for line in live if line.startswith("msg|user|")]
    assert users == ["msg|user|hello", "msg|user|hi there", "msg|user|Sent while offline"]
    widget.page.reload()  # the server's view of the conversation, drawn afresh
    expect(widget.answers()).to_have_count(3)
    assert widget.transcript() == live
