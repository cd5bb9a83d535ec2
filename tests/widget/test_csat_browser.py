"""CSAT from the widget to the dashboard, in a real browser: a visitor chats, a staff
member replies and resolves in the console, the widget asks once for a rating, the
visitor rates 4 with a comment using the keyboard, and the console page, the list and
the dashboard show it. Reloaded, the widget does not ask again for that resolution."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.widget import test_browser
from tests.widget.server import DaphneServer
from tests.widget.test_browser import ARTIFACTS, Widget, expect, staff_login
from tests.widget.test_browser_look import assert_accessible

pytestmark = test_browser.pytestmark  # browser, slow, skipped without chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    daphne = DaphneServer(tmp_path_factory.mktemp("widget-csat-server"))
    daphne.prepare()
    daphne.start()
    yield daphne
    daphne.stop()


def caught_up(widget: Widget) -> None:
    """Wait until the widget's socket has caught up: the prompt, if due, is drawn then."""
    widget.page.wait_for_function("() => document.querySelector('support-chat').socketReady === true")


def test_a_resolved_conversation_is_rated_once_from_the_widget_and_shown_to_staff(server, browser, context):
    # Given a visitor who chatted with the AI and was answered by a person
    visitor = Widget.answered(context, server)
    conversation_id = visitor.stored()["conversation"]
    staff_context, staff = staff_login(browser, server)
    try:
        page = f"{server.base_url}/admin/conversations/conversation/{conversation_id}/change/"
        staff.goto(page)
        staff.locator("#cs-reply").fill("Your parcel left our warehouse today.")
        staff.get_by_role("button", name="Send reply").click()
        expect(visitor.root.locator(".msg.staff .bubble")).to_have_text("Your parcel left our warehouse today.")
        expect(visitor.root.locator(".rating")).to_have_count(0)  # not asked while open

        # When the staff member resolves it in the console
        staff.get_by_role("button", name="Resolve").click()
        expect(staff.locator('[data-state="status"]')).to_have_text("Resolved")

        # Then the widget says it is resolved (though a person had taken over) and asks, once, with five labelled choices, a comment box, Send and Skip
        expect(visitor.root.locator(".banner")).to_have_text("This conversation is resolved. Write again any time.")
        prompt = visitor.root.locator(".rating")
        expect(prompt).to_have_count(1)
        expect(prompt.get_by_role("group", name="How did we do?")).to_be_visible()
        for score in range(1, 6):
            expect(prompt.get_by_role("button", name=f"{score} out of 5")).to_be_visible()
        send = prompt.get_by_role("button", name="Send rating")
        expect(send).to_have_attribute("aria-disabled", "true")  # nothing chosen yet
        expect(prompt.get_by_role("button", name="Skip")).to_be_visible()

        # The visitor rates 4 with the keyboard and adds a comment
        four = prompt.get_by_role("button", name="4 out of 5")
        four.focus()
        visitor.page.keyboard.press("Space")
        expect(four).to_have_attribute("aria-pressed", "true")
        expect(prompt.locator(".score.on")).to_have_count(4)
        prompt.get_by_label("Anything you'd like to add? (optional)").fill("Fast, and a real person helped.")
        # The prompt passes axe-core in both themes (the chosen stars are text, so their colour counts)
        assert_accessible(visitor.page)
        ARTIFACTS.mkdir(exist_ok=True)
        visitor.page.screenshot(path=str(ARTIFACTS / "widget-csat-prompt.png"))
        widget_theme = "document.querySelector('support-chat').setAttribute('theme', '{}')"
        visitor.page.evaluate(widget_theme.format("dark"))
        assert_accessible(visitor.page)
        visitor.page.screenshot(path=str(ARTIFACTS / "widget-csat-prompt-dark.png"))
        visitor.page.evaluate(widget_theme.format("light"))
        send.focus()
        visitor.page.keyboard.press("Enter")
        expect(visitor.root.locator(".rating.done")).to_have_text("Thank you for your feedback!")
        expect(visitor.root.locator(".rating:not(.done)")).to_have_count(0)

        # Reloaded, the widget remembers: no prompt for this resolution
        visitor.page.reload()
        expect(visitor.answers()).to_have_count(1)
        expect(visitor.root.locator(".msg.staff")).to_have_count(1)
        caught_up(visitor)
        expect(visitor.root.locator(".rating")).to_have_count(0)

        # The console page shows the stars as text and the comment; the list a column
        staff.goto(page)
        rating = staff.locator("#cs-rating")
        expect(rating.locator(".cs-stars")).to_have_text("★★★★☆ 4/5")
        expect(rating).to_contain_text("Human-handled (admin)")
        expect(rating.locator(".cs-rating-comment")).to_have_text("Fast, and a real person helped.")
        staff.goto(f"{server.base_url}/admin/conversations/conversation/?rating=high")
        expect(staff.locator("#result_list")).to_contain_text("★ 4/5")

        # And the dashboard counts it, human-handled, for the staff member who replied
        staff.goto(f"{server.base_url}/admin/ops/dashboard/")
        csat = staff.locator("#ops-csat")
        expect(csat).to_contain_text("Human-handled: 4.00 / 5 (1)")
        expect(csat.locator("#ops-csat-people tbody tr").filter(has_text="admin")).to_contain_text("4.00")
    finally:
        staff_context.close()


def test_skipping_the_rating_is_remembered_for_that_resolution(server, browser, context):
    visitor = Widget.answered(context, server)
    conversation_id = visitor.stored()["conversation"]
    staff_context, staff = staff_login(browser, server)
    try:
        staff.goto(f"{server.base_url}/admin/conversations/conversation/{conversation_id}/change/")
        staff.get_by_role("button", name="Resolve").click()
        prompt = visitor.root.locator(".rating")
        expect(prompt).to_have_count(1)
        prompt.get_by_role("button", name="Skip").click()
        expect(prompt).to_have_count(0)
        assert visitor.active_element() == "TEXTAREA."  # the focus went back to the message box
        visitor.page.reload()
        expect(visitor.answers()).to_have_count(1)
        caught_up(visitor)
        expect(visitor.root.locator(".rating")).to_have_count(0)
    finally:
        staff_context.close()
