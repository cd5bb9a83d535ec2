"""Budget limits stop a runaway conversation (or customer) at the limit, politely, and
hand it to staff."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from conversations.models import Message, Turn
from conversations.permissions import AGENT, support_groups_sync
from conversations.services.conversations import conversation_create, conversation_hand_back
from conversations.services.messages import message_post
from tests.conftest import wait_for, wait_turn_finished
from tests.fake_provider import text

pytestmark = pytest.mark.django_db(transaction=True)

POLITE = "Thanks for your patience. A person will take it from here."


def _limits(settings, **limits):
    settings.SUPPORT_PLATFORM = {
        **settings.SUPPORT_PLATFORM,
        "BUDGET_CONVERSATION_TOKENS_PER_DAY": 0,
        "BUDGET_CONVERSATION_COST_PER_DAY": 0.0,
        "BUDGET_CUSTOMER_TOKENS_PER_DAY": 0,
        "BUDGET_CUSTOMER_COST_PER_DAY": 0.0,
        "BUDGET_MESSAGE": POLITE,
        **limits,
    }


def _ask(conversation, words):
    posted = message_post(conversation=conversation, text=words)
    return wait_turn_finished(posted.turn.id) if posted.turn else None


def test_conversation_token_budget_stops_the_conversation_and_hands_off(default_agent, provider, settings):
    # Each fake-provider answer uses 100 input + 20 output tokens.
    _limits(settings, BUDGET_CONVERSATION_TOKENS_PER_DAY=250)
    conversation = conversation_create(channel="widget")
    for i in range(3):
        provider.queue(text(f"Answer {i}"))
        turn = _ask(conversation, f"Question {i}")
        assert turn.status == "completed" and turn.error_code == ""
    assert len(provider.requests) == 3  # 120, 240 tokens used: still under 250 before each

    stopped = _ask(conversation, "Question 3")
    assert len(provider.requests) == 3, "the model must not be called over budget"
    assert stopped.status == "completed"
    assert stopped.error_code == "budget"
    assert "this conversation used 360 tokens" in stopped.error_message and "limit 250" in stopped.error_message
    assert stopped.requests == []
    answer = Message.objects.get(turn=stopped, kind="assistant")
    assert answer.text == POLITE
    assert answer.metadata == {"budget_limit": "conversation_tokens_per_day"}

    conversation.refresh_from_db()
    assert conversation.status == "waiting_on_staff" and conversation.ai_paused
    assert conversation.metadata["handoff_reason"] == stopped.error_message

    # The runaway is over: later messages are stored for staff and start no turn.
    later = message_post(conversation=conversation, text="Hello?")
    assert later.turn is None
    assert len(provider.requests) == 3

    # A person hands it back on purpose: the budget counts afresh from then.
    staff = get_user_model().objects.create_user("agent-smith", password="pw-12345678", is_staff=True)
    support_groups_sync()  # handing back needs a Support agent's permissions
    staff.groups.add(Group.objects.get(name=AGENT))
    conversation = conversation_hand_back(conversation=conversation, actor=staff)
    resumed = Turn.objects.filter(conversation=conversation).order_by("-created_at").first()
    assert resumed.trigger == "handback"  # "Hello?" was still unanswered
    assert wait_turn_finished(resumed.id).error_code == ""
    assert len(provider.requests) == 4


def test_customer_cost_budget_spans_their_conversations(default_agent, provider, settings):
    # gpt-4.1-mini: 100 input + 20 output tokens cost $0.000072 a turn.
    _limits(settings, BUDGET_CUSTOMER_COST_PER_DAY=0.0001)
    first = conversation_create(channel="api", customer_kind="user", customer_id="cust-42")
    second = conversation_create(channel="api", customer_kind="user", customer_id="cust-42")
    other = conversation_create(channel="api", customer_kind="user", customer_id="cust-7")

    assert _ask(first, "one").error_code == ""
    assert _ask(second, "two").error_code == ""  # $0.000072 used before it: under the limit
    stopped = _ask(first, "three")  # $0.000144 used by this customer today
    assert stopped.error_code == "budget"
    assert "this customer used $0.000144 in the last 24 hours (limit $0.0001)" in stopped.error_message
    first.refresh_from_db()
    assert first.ai_paused and first.status == "waiting_on_staff"

    # Another customer is unaffected.
    assert _ask(other, "hi").error_code == ""
    assert len(provider.requests) == 3


def test_no_limits_means_no_budget_queries(default_agent, provider, settings, django_assert_max_num_queries):
    from conversations.agent.budgets import budget_check

    _limits(settings)
    conversation = conversation_create(channel="api")
    turn = Turn.objects.select_related("conversation").get(pk=_ask(conversation, "hello").pk)
    with django_assert_max_num_queries(0):
        assert budget_check(turn=turn) is None


def test_budget_stop_is_counted_in_metrics(default_agent, provider, settings):
    from django.test import Client

    from tests.ops.helpers import delta, scrape

    _limits(settings, BUDGET_CONVERSATION_TOKENS_PER_DAY=1)
    client = Client()
    before = scrape(client)
    conversation = conversation_create(channel="api")
    assert _ask(conversation, "first").error_code == ""
    conversation.refresh_from_db()
    assert _ask(conversation, "second").error_code == "budget"
    wait_for(lambda: delta(before, scrape(client), "support_budget_stops_total", limit="conversation_tokens_per_day") == 1)
