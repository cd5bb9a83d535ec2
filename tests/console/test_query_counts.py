"""The list and conversation pages cost a fixed number of queries as data grows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.console.benchdata import conversation_long, conversations_generate
from conversations.models import Agent
from tests.console.conftest import conversation_url

pytestmark = pytest.mark.django_db

LIST = "/admin/conversations/conversation/"
LIST_PAGES = [
    LIST,
    LIST + "?has_failed_turn__exact=1",
    LIST + "?status__exact=waiting_on_staff&ai_paused__exact=0",
    LIST + "?q=customer",
    LIST + "?q=reroute",
]


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        assert response.status_code == 200, url
    return len(captured.captured_queries)


def test_list_pages_cost_the_same_queries_for_60_or_300_conversations(admin_client_):
    agent = Agent.objects.create(name="Bench")
    other = Agent.objects.create(name="Other")
    conversations_generate(agent=agent, count=60, items_per_conversation=6)
    small = {url: _queries(admin_client_, url) for url in LIST_PAGES}

    conversations_generate(agent=agent, count=120, items_per_conversation=6, offset=60)
    conversations_generate(agent=other, count=120, items_per_conversation=6, offset=180, prefix="other")
    large = {url: _queries(admin_client_, url) for url in LIST_PAGES}

    assert large == small
    # session, user, agents for the filter, count; waiting count, waiting rows, other rows;
    # a search also checks for an exact customer id first
    assert max(large.values()) <= 8, large


def test_waiting_first_pages_match_a_full_sort(admin_client_):
    from django.db.models import Case, IntegerField, Value, When

    from conversations.console.pagination import WaitingFirstPaginator
    from conversations.models import Conversation

    agent = Agent.objects.create(name="Bench")
    conversations_generate(agent=agent, count=130, items_per_conversation=2)  # 6 waiting
    rank = Case(When(status="waiting_on_staff", then=Value(0)), default=Value(1), output_field=IntegerField())
    expected = list(Conversation.objects.order_by(rank, "-updated_at", "-pk").values_list("pk", flat=True))
    paginator = WaitingFirstPaginator(Conversation.objects.all(), 4)
    paged = [c.pk for number in paginator.page_range for c in paginator.page(number).object_list]
    assert paged == expected and len(paged) == 130


def test_list_shows_marks_and_puts_waiting_on_staff_first(admin_client_):
    agent = Agent.objects.create(name="Bench")
    conversations_generate(agent=agent, count=60, items_per_conversation=4)
    page = admin_client_.get(LIST).content.decode()
    rows = page.split("<tbody>", 1)[1].split("</tr>")
    # Every 25th generated conversation waits on staff (#7, #32, #57): they come first.
    assert all("Waiting on staff" in row for row in rows[:3]), rows[0]
    assert "Waiting on staff" not in rows[3]
    assert 'cs-mark-failed' in page and 'cs-mark-paused' in page


def test_conversation_page_costs_the_same_queries_for_20_or_1500_items(admin_client_):
    agent = Agent.objects.create(name="Bench")
    short = conversation_long(agent=agent, items=20)
    long = conversation_long(agent=agent, items=1500)
    counts = {}
    for conversation in (short, long):
        counts[conversation.message_count] = (
            _queries(admin_client_, conversation_url(conversation)),
            _queries(admin_client_, f"/admin/conversations/conversation/{conversation.pk}/items/?before=15"),
            _queries(admin_client_, f"/admin/conversations/conversation/{conversation.pk}/items/?after=5"),
        )
    assert counts[20] == counts[1500], counts
    assert counts[1500][0] <= 12, counts


def test_a_long_conversation_page_holds_the_newest_page_and_loads_earlier_ones(admin_client_):
    agent = Agent.objects.create(name="Bench")
    conversation = conversation_long(agent=agent, items=1500)
    page = admin_client_.get(conversation_url(conversation)).content.decode()
    assert 'id="item-1500"' in page
    assert 'id="item-1390"' not in page  # only the newest 100 items
    assert "Load earlier items" in page
    earlier = admin_client_.get(f"/admin/conversations/conversation/{conversation.pk}/items/?before=1401")
    html = earlier.content.decode()
    assert 'id="item-1400"' in html and 'id="item-1301"' in html and 'id="item-1300"' not in html
    assert earlier["X-First-Seq"] == "1301" and earlier["X-Has-Earlier"] == "1"
    first = admin_client_.get(f"/admin/conversations/conversation/{conversation.pk}/items/?before=50")
    assert first["X-First-Seq"] == "1" and first["X-Has-Earlier"] == "0"
