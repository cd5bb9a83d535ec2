"""CSAT: the customer rates a resolved conversation once per resolution, through the
service every door calls; the rating shows on the console's conversation page and list,
on the dashboard (AI-only vs human-handled, by the staff member who last replied) and
in /metrics. Widget and REST permissions are in the authorisation matrices; the widget
itself in tests/widget/test_csat_browser.py."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from conversations.authorization import Principal
from conversations.errors import Conflict, InvalidInput, PermissionDenied
from conversations.models import Conversation, CsatRating
from conversations.services.conversations import conversation_create, conversation_set_status
from conversations.services.messages import message_post, staff_reply_post
from conversations.services.ratings import MAX_COMMENT_CHARS, rating_add, rating_stats
from tests.ops.helpers import delta, scrape, value

pytestmark = pytest.mark.django_db


def _visitor(conversation: Conversation) -> Principal:
    return Principal(kind="visitor", conversation_id=str(conversation.pk))


@pytest.fixture
def resolved(default_agent: Any) -> Conversation:
    conversation = conversation_create(channel="widget")
    message_post(conversation=conversation, text="Where is my order?", actor=_visitor(conversation))
    return conversation_set_status(conversation=conversation, status="resolved")


def _staff(name: str) -> Any:
    return get_user_model().objects.create_superuser(name, f"{name}@example.com", "pw-" + name + "-123")


def test_the_customer_rates_a_resolved_conversation_with_a_comment(resolved):
    # When the customer rates the resolution 4 with a comment
    rating = rating_add(conversation=resolved, actor=_visitor(resolved), score=4, comment="  Quick and clear.  ")
    # Then it is stored for this resolution, AI-only (no staff replied), and shown on the row
    assert (rating.score, rating.comment, rating.resolution, rating.handled) == (4, "Quick and clear.", 1, "ai")
    assert Conversation.objects.get(pk=resolved.pk).csat_score == 4


def test_an_open_conversation_cannot_be_rated(default_agent):
    conversation = conversation_create(channel="widget")
    with pytest.raises(Conflict) as refused:
        rating_add(conversation=conversation, actor=_visitor(conversation), score=5)
    assert refused.value.code == "not_resolved"
    assert not CsatRating.objects.exists()


def test_one_resolution_is_rated_once_and_a_new_resolution_may_be_rated_again(resolved):
    visitor = _visitor(resolved)
    rating_add(conversation=resolved, actor=visitor, score=2)
    # Rating the same resolution again is refused, and the first rating stands
    with pytest.raises(Conflict) as refused:
        rating_add(conversation=resolved, actor=visitor, score=5)
    assert refused.value.code == "already_rated"
    assert list(CsatRating.objects.values_list("score", flat=True)) == [2]
    # The customer writes again (reopening it); resolved again, it may be rated again
    message_post(conversation=resolved, text="One more thing", actor=visitor)
    assert Conversation.objects.get(pk=resolved.pk).status == "open"
    again = conversation_set_status(conversation=resolved, status="resolved")
    assert again.resolution == 2
    rating_add(conversation=again, actor=visitor, score=5)
    assert sorted(CsatRating.objects.values_list("resolution", "score")) == [(1, 2), (2, 5)]
    assert Conversation.objects.get(pk=resolved.pk).csat_score == 5


@pytest.mark.parametrize("score", [0, 6, -1, "4", 4.0, True, None])
def test_a_score_outside_1_to_5_is_refused(resolved, score):
    with pytest.raises(InvalidInput) as refused:
        rating_add(conversation=resolved, actor=_visitor(resolved), score=score)
    assert refused.value.fields == {"score": "invalid"}
    assert not CsatRating.objects.exists()


@pytest.mark.parametrize(("comment", "problem"), [
    ("x" * (MAX_COMMENT_CHARS + 1), "too long"), ("bad \x00 byte", "contains a NUL character"), (["list"], "invalid"),
])
def test_a_bad_comment_is_refused_and_nothing_is_stored(resolved, comment, problem):
    with pytest.raises(InvalidInput) as refused:
        rating_add(conversation=resolved, actor=_visitor(resolved), score=3, comment=comment)
    assert refused.value.fields == {"comment": problem}
    assert not CsatRating.objects.exists()


def test_staff_may_not_rate_on_the_customers_behalf(resolved):
    with pytest.raises(PermissionDenied):
        rating_add(conversation=resolved, actor=_staff("root"), score=5)
    assert not CsatRating.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_ratings_of_one_resolution_store_one(resolved):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL's row locks")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def rate(score: int) -> None:
        barrier.wait()
        try:
            rating_add(conversation=resolved, actor=_visitor(resolved), score=score)
            outcomes.append("stored")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate, args=(s,)) for s in (1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already_rated", "stored"]
    assert CsatRating.objects.count() == 1


def test_a_human_handled_rating_is_credited_to_the_staff_member_who_last_replied(default_agent):
    sam, kim = _staff("sam"), _staff("kim")
    rated = []
    for replier, score in ((sam, 5), (kim, 2), (None, 4), (kim, 4)):
        conversation = conversation_create(channel="widget")
        message_post(conversation=conversation, text="Hello", actor=_visitor(conversation))
        if replier is not None:
            staff_reply_post(conversation=conversation, actor=sam, text="Looking into it.")
            staff_reply_post(conversation=conversation, actor=replier, text="Done.")
        conversation_set_status(conversation=conversation, status="resolved")
        rated.append(rating_add(conversation=conversation, actor=_visitor(conversation), score=score))
    assert [(r.handled, r.staff_id) for r in rated] == [
        ("human", sam.pk), ("human", kim.pk), ("ai", None), ("human", kim.pk),
    ]
    stats = rating_stats()
    assert (stats["count"], stats["average"]) == (4, 3.75)
    assert stats["ai"] == {"count": 1, "average": 4.0}
    assert stats["human"] == {"count": 3, "average": 3.67}
    assert stats["by_person"] == [{"name": "sam", "count": 1, "average": 5.0}, {"name": "kim", "count": 2, "average": 3.0}]


def test_the_console_dashboard_and_metrics_show_the_rating(resolved):
    client = Client()
    before = scrape(client)
    rating_add(conversation=resolved, actor=_visitor(resolved), score=4, comment="<b>Great</b> help")
    client.force_login(_staff("boss"))
    # The conversation page: stars as text and the comment, escaped
    page = client.get(f"/admin/conversations/conversation/{resolved.pk}/change/").content.decode()
    assert "★★★★☆ 4/5" in page and "AI only" in page
    assert "&lt;b&gt;Great&lt;/b&gt; help" in page and "<b>Great</b>" not in page
    # The list: a column, and a filter that finds it (and not an unrated conversation)
    unrated = conversation_create(channel="widget", customer_name="Unrated Ursula")
    listing = client.get("/admin/conversations/conversation/?rating=high").content.decode()
    assert "★ 4/5" in listing and str(resolved.pk) in listing and unrated.customer_name not in listing
    assert unrated.customer_name in client.get("/admin/conversations/conversation/?rating=unrated").content.decode()
    assert str(resolved.pk) not in client.get("/admin/conversations/conversation/?rating=low").content.decode()
    # The dashboard: count and average, AI-only vs human-handled
    dashboard = client.get("/admin/ops/dashboard/").content.decode()
    assert "4.00 / 5 from 1 rating" in dashboard and "AI only: 4.00 / 5 (1)" in dashboard
    assert "Human-handled: –" in dashboard
    # /metrics: counted by score and handled
    after = scrape(Client())
    assert delta(before, after, "support_csat_ratings_total", score="4", handled="ai") == 1
    assert value(after, "support_csat_ratings_total", score="5", handled="human") == 0
