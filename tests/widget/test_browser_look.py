"""How the widget looks and reads, in a real browser: citations as links to the public
help pages, the assistant's and staff members' names and avatars, light and dark themes
and the site's colours, right-to-left pages, visible focus, and an axe-core audit with
no serious or critical violation (closed, open with messages, both themes, RTL, phone).
Screenshots go to test-artifacts/.

axe-core comes from npm (`npm ci` installs it into node_modules; `make test` does so
when it is missing). Without it the audits fail under CI=true and skip otherwise."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, new_context
from tests.widget.server import BASE_DIR, DaphneServer
from tests.widget.test_browser import ARTIFACTS, ROOT, Widget, staff_socket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

AXE = BASE_DIR / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
AVATAR_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" fill="#0f766e"/>'
    '<circle cx="32" cy="26" r="12" fill="#fff"/><rect x="14" y="42" width="36" height="18" rx="9" fill="#fff"/></svg>'
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    daphne = DaphneServer(tmp_path_factory.mktemp("widget-look-server"), env={"SUPPORT_OFFLINE_WORD_DELAY": "0.005"})
    daphne.prepare()
    daphne.start()
    yield daphne
    daphne.stop()


def shell(server: DaphneServer, code: str) -> str:
    return server.manage("shell", "-v0", "-c", code).strip()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical axe-core violations inside the widget (its shadow tree)."""
    if not AXE.exists():
        reason = f"{AXE.relative_to(BASE_DIR)} is missing: run `npm ci` (make test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol, so the page's CSP (no inline script) holds.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("""async () => {
        const r = await axe.run({include: [['support-chat']]}, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], violations


def visit(context: Any, server: DaphneServer) -> Widget:
    """The demo shop, once the widget's element is on the page (the loader is async)."""
    widget = Widget.visit(context, server)
    expect(widget.root.locator("button.launcher")).to_be_visible()
    return widget


def css(widget: Widget, selector: str, prop: str) -> str:
    return widget.page.evaluate(
        f"([s, p]) => getComputedStyle({ROOT}.querySelector(s)).getPropertyValue(p)", [selector, prop]
    )


def test_an_answer_cites_public_help_articles_as_links_and_internal_ones_not_at_all(server, context):
    widget = visit(context, server)
    widget.open()
    widget.send("How long does express shipping take?")
    expect(widget.answers()).to_have_count(1)
    expect(widget.answers().first).to_contain_text('From "Shipping and delivery"')
    link = widget.root.locator(".msg.assistant .sources a")
    expect(link).to_have_text("Shipping and delivery")
    href = link.get_attribute("href")
    assert re.fullmatch(re.escape(server.base_url) + r"/help/\d+-shipping-and-delivery/", href), href
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    with context.expect_page() as opened:
        link.click()
    article = opened.value
    expect(article.locator("h1")).to_have_text("Shipping and delivery")
    expect(article.get_by_role("heading", name="Delivery times and costs")).to_be_visible()
    expect(article.locator("main")).to_contain_text("Express shipping takes 1-2 business days")
    assert_accessible_page(article)
    ARTIFACTS.mkdir(exist_ok=True)
    article.screenshot(path=str(ARTIFACTS / "help-article.png"))
    article.close()

    # Marked internal, the article is no longer cited as a link, and its page is gone.
    shell(server, "from conversations.knowledge.models import Document; "
                  "Document.objects.filter(title='Shipping and delivery').update(is_public=False)")
    widget.send("How long does standard shipping take?")
    expect(widget.answers()).to_have_count(2)
    expect(widget.answers().nth(1)).to_contain_text('From "Shipping and delivery"')
    expect(widget.root.locator(".msg.assistant").nth(1).locator(".sources")).to_have_count(0)
    assert context.request.get(href).status == 404
    # A reload reads the answers back from the database: the same links, no more.
    widget.page.reload()
    expect(widget.answers()).to_have_count(2)
    expect(widget.root.locator(".sources a")).to_have_count(0)
    shell(server, "from conversations.knowledge.models import Document; "
                  "Document.objects.filter(title='Shipping and delivery').update(is_public=True)")
    widget.page.reload()
    expect(widget.root.locator(".sources a")).to_have_count(2)


def assert_accessible_page(page: Any) -> None:
    """axe-core over a whole platform page (the public help article)."""
    if not AXE.exists():
        axe_violations(page)  # fails or skips with the reason
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found = page.evaluate("async () => (await axe.run(document)).violations.map(v => [v.id, v.impact])")
    assert [v for v in found if v[1] in ("serious", "critical")] == []


def test_the_assistant_and_staff_show_their_names_and_avatars_beside_messages(server, browser, context):
    shell(server, "from conversations.models import Agent; "
                  f"Agent.objects.filter(is_default=True).update(display_name='Nora', avatar_url='{server.base_url}/avatars/nora.svg')")
    shell(server, "from django.contrib.auth.models import User; from conversations.models import StaffProfile; "
                  "StaffProfile.objects.update_or_create(user=User.objects.get(username='admin'), "
                  "defaults={'display_name': 'Sam from Northwind', 'avatar_url': 'https://127.0.0.1:1/missing.png'})")
    context.route(f"{server.base_url}/avatars/nora.svg", lambda route: route.fulfill(body=AVATAR_SVG, content_type="image/svg+xml"))
    try:
        widget = visit(context, server)
        widget.open()
        widget.send("hello")
        expect(widget.answers()).to_have_count(1)
        expect(widget.root.locator("h2")).to_have_text("Nora")  # the panel's title too, once the session names it
        answer = widget.root.locator(".msg.assistant").first
        expect(answer.locator(".who")).to_have_text("Nora")
        image = answer.locator(".avatar img")
        expect(image).to_have_attribute("src", f"{server.base_url}/avatars/nora.svg")
        expect(image).to_have_attribute("alt", "")  # the name beside it says who it is
        widget.page.wait_for_function(f"() => {ROOT}.querySelector('.msg.assistant .avatar img').naturalWidth > 0")
        # A name does not hide who answers: the offline model still says what it is.
        expect(widget.root.locator("header .model")).to_contain_text("Offline demo model")

        staff_context, staff = staff_socket(browser, server, widget.stored()["conversation"])
        try:
            staff.evaluate("() => window.staffSocket.send(JSON.stringify({type: 'typing'}))")
            expect(widget.root.locator(".typing")).to_have_text("Sam from Northwind is typing…")
            staff.evaluate("""() => window.staffSocket.send(JSON.stringify(
                {type: 'message', text: 'Sam here, happy to help.', client_id: 'staff-look-1'}))""")
            line = widget.root.locator(".msg.staff")
            expect(line.locator(".who")).to_have_text("Sam from Northwind (support team)")
            # The avatar cannot load (nothing listens there): the initial stands in.
            expect(line.locator(".avatar")).to_have_text("S")
            expect(line.locator(".avatar img")).to_have_count(0)
        finally:
            staff_context.close()
        assert_accessible(widget.page)
    finally:
        shell(server, "from conversations.models import Agent, StaffProfile; "
                      "Agent.objects.update(display_name='', avatar_url=''); StaffProfile.objects.all().delete()")


def _chat(widget: Widget) -> None:
    widget.open()
    widget.send("How long does express shipping take?")
    expect(widget.answers()).to_have_count(1)
    widget.send("Where is order 1001? My email is ada@example.com")
    expect(widget.answers()).to_have_count(2)


def test_light_and_dark_themes_and_the_system_preference_pass_axe(server, browser, context):
    ARTIFACTS.mkdir(exist_ok=True)
    widget = visit(context, server)
    expect(widget.root.locator("button.launcher")).to_be_visible()
    assert_accessible(widget.page)  # closed
    _chat(widget)
    assert css(widget, ".panel", "background-color") == "rgb(255, 255, 255)"  # light is the default
    assert_accessible(widget.page)
    widget.page.screenshot(path=str(ARTIFACTS / "widget-light.png"))

    widget.page.evaluate("document.querySelector('support-chat').setAttribute('theme', 'dark')")
    assert css(widget, ".panel", "background-color") == "rgb(17, 24, 39)"
    assert css(widget, ".msg.assistant .bubble", "color") == "rgb(229, 231, 235)"
    assert_accessible(widget.page)
    widget.page.screenshot(path=str(ARTIFACTS / "widget-dark.png"))

    # auto follows the visitor's system: light here, dark in a dark-preferring browser.
    widget.page.evaluate("document.querySelector('support-chat').setAttribute('theme', 'auto')")
    assert css(widget, ".panel", "background-color") == "rgb(255, 255, 255)"
    dark_context = new_context(browser, viewport={"width": 1280, "height": 800}, color_scheme="dark")
    try:
        dark = visit(dark_context, server)
        dark.page.evaluate("document.querySelector('support-chat').setAttribute('theme', 'auto')")
        dark.open()
        assert css(dark, ".panel", "background-color") == "rgb(17, 24, 39)"
        assert_accessible(dark.page)
    finally:
        dark_context.close()


def test_the_sites_colours_keep_text_readable_and_focus_visible(server, context):
    widget = visit(context, server)
    host = "document.querySelector('support-chat')"
    widget.page.evaluate(f"{host}.setAttribute('accent', '#fde047')")  # a light yellow
    widget.open()
    widget.send("hello")
    expect(widget.answers()).to_have_count(1)
    assert css(widget, "header", "background-color") == "rgb(253, 224, 71)"
    assert css(widget, "header", "color") == "rgb(17, 24, 39)"  # dark text on the light accent
    assert css(widget, ".msg.user .bubble", "color") == "rgb(17, 24, 39)"
    assert_accessible(widget.page)
    widget.page.evaluate(f"{host}.setAttribute('accent', '#1e3a8a')")  # dark blue: white text again
    assert css(widget, "header", "color") == "rgb(255, 255, 255)"

    # Keyboard focus is visible: a 3 px ring on the launcher and the header's buttons.
    widget.page.keyboard.press("Escape")
    assert widget.active_element().startswith("BUTTON.launcher")
    assert css(widget, ".launcher", "outline-style") == "solid"
    assert css(widget, ".launcher", "outline-width") == "3px"
    widget.page.keyboard.press("Enter")
    widget.page.keyboard.press("Shift+Tab")  # from the message box back into the transcript
    widget.page.keyboard.press("Shift+Tab")
    focused = widget.page.evaluate(f"() => getComputedStyle({ROOT}.activeElement).outlineStyle")
    assert focused == "solid"


def test_right_to_left_from_the_attribute_and_from_the_page_on_desktop_and_phone(server, browser, context):
    ARTIFACTS.mkdir(exist_ok=True)
    hebrew = ('{"greeting": "שלום! איך אפשר לעזור?", "placeholder": "כתבו הודעה…", '
              '"talkToPerson": "לדבר עם נציג", "newConversation": "שיחה חדשה"}')
    widget = visit(context, server)
    widget.page.evaluate("(s) => { const c = document.querySelector('support-chat'); "
                         "c.setAttribute('dir', 'rtl'); c.setAttribute('lang', 'en'); c.setAttribute('strings', s); }", hebrew)
    widget.open()
    expect(widget.root.locator("section.panel")).to_have_attribute("dir", "rtl")
    widget.send("שלום")
    expect(widget.answers()).to_have_count(1)
    panel = widget.root.locator("section.panel").bounding_box()
    assert panel["x"] < 100  # the corner follows the reading direction: bottom left
    user = widget.root.locator(".msg.user .bubble").bounding_box()
    answer = widget.root.locator(".msg.assistant .bubble").bounding_box()
    assert user["x"] < answer["x"]  # the visitor's own messages on the left, answers on the right
    avatar = widget.root.locator(".msg.assistant .avatar").bounding_box()
    assert avatar["x"] > answer["x"]  # the avatar at the start of the line: the right
    assert_accessible(widget.page)
    widget.page.screenshot(path=str(ARTIFACTS / "widget-rtl.png"))
    # position="right" still wins over the direction.
    widget.page.evaluate("document.querySelector('support-chat').setAttribute('position', 'right')")
    assert widget.root.locator("section.panel").bounding_box()["x"] > 600

    # No dir on the element: it follows the page's <html dir>, also when that changes.
    phone_context = new_context(browser, **PHONE, color_scheme="dark")
    try:
        phone = visit(phone_context, server)
        phone.page.evaluate("document.documentElement.dir = 'rtl'; "
                            "document.querySelector('support-chat').setAttribute('theme', 'auto')")
        phone.open()
        expect(phone.root.locator("section.panel")).to_have_attribute("dir", "rtl")
        box = phone.root.locator("section.panel").bounding_box()
        assert box["width"] == 390 and box["height"] == 844  # full screen on a phone
        phone.send("Where is order 1001? My email is ada@example.com")
        expect(phone.answers()).to_have_count(1)
        assert css(phone, ".panel", "background-color") == "rgb(17, 24, 39)"
        assert_accessible(phone.page)
        phone.page.screenshot(path=str(ARTIFACTS / "widget-phone-rtl-dark.png"))
        phone.page.evaluate("document.documentElement.dir = 'ltr'")
        expect(phone.root.locator("section.panel")).to_have_attribute("dir", "ltr")
    finally:
        phone_context.close()


def test_the_embed_snippets_data_attributes_set_theme_colour_and_direction(server, context):
    """A customer's page: `<html dir="rtl">` and the one script tag with data-* options."""
    page_url = f"{server.base_url}/embed-look-test"
    html = (f'<!doctype html><html lang="he" dir="rtl"><head><title>חנות</title></head><body><main><h1>חנות</h1></main>'
            f'<script src="{server.base_url}/static/widget/widget.js" async data-theme="dark" data-accent="#0f766e"></script>'
            '</body></html>')
    context.route(page_url, lambda route: route.fulfill(body=html, content_type="text/html"))
    page = context.new_page()
    page.goto(page_url)
    widget = Widget(page, server)
    expect(widget.root).to_have_attribute("theme", "dark")
    expect(widget.root.locator("section.panel")).to_have_attribute("dir", "rtl", timeout=10_000)
    widget.root.locator("button.launcher").click()
    assert css(widget, "header", "background-color") == "rgb(15, 118, 110)"
    assert css(widget, ".panel", "background-color") == "rgb(17, 24, 39)"
    assert_accessible(page)
