"""Authorisation lives in the tools' code, never in the prompt: `lookup_order` answers
only about the conversation's own customer, whatever the model asks for, and cannot be
used to learn which order numbers exist."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.services.conversations import conversation_create
from tests.engine.support import answered, ask, outputs_by_call
from tests.fake_provider import calls, text
from tools.builtin.orders import NOT_FOUND
from tools.models import DemoOrder

pytestmark = pytest.mark.django_db(transaction=True)


def _lookups(provider, conversation, *arguments):
    provider.queue(
        calls(*[("lookup_order", {"order_number": n, "email": e}) for n, e in arguments]),
        text("Done."),
    )
    turn = answered(ask(conversation, "Check these orders"))
    assert turn.status == "completed", turn.error_message
    call_ids = [item["call_id"] for item in provider.requests[1]["input"] if item["type"] == "function_call"]
    outputs = outputs_by_call(conversation)
    return [outputs[call_id] for call_id in call_ids]


def test_a_customer_with_a_known_email_sees_only_their_own_orders(agent, provider):
    grace = conversation_create(agent=agent, customer_email="grace@example.com", channel="widget")

    ada_with_her_email, ada_without, own, missing = _lookups(
        provider, grace,
        ("1001", "ada@example.com"),  # the model was talked into using someone else's email
        ("1001", None),
        ("1002", None),
        ("9999", None),
    )

    assert ada_with_her_email == ada_without == missing == NOT_FOUND
    assert json.loads(own)["status"] == "processing"
    assert "1Z999AA10123456784" not in json.dumps(grace.messages.values_list("text", flat=True)[::1])


def test_an_anonymous_visitor_needs_the_order_email(agent, provider):
    visitor = conversation_create(agent=agent, channel="widget")

    without_email, wrong_email, with_email = _lookups(
        provider, visitor, ("1001", None), ("1001", "grace@example.com"), ("#1001", "ADA@example.com "),
    )

    assert without_email == wrong_email == NOT_FOUND
    assert json.loads(with_email)["order_number"] == "1001"


def test_a_signed_in_customer_cannot_see_another_accounts_order(agent, provider, demo):
    DemoOrder.objects.create(
        number="2001", customer_email="mallory@example.com", customer_id="user-7", status="shipped",
        placed_at=timezone.now() - timedelta(days=1),
    )
    DemoOrder.objects.create(
        number="2002", customer_email="me@example.com", customer_id="user-8", status="processing",
        placed_at=timezone.now() - timedelta(days=1),
    )
    me = conversation_create(agent=agent, customer_kind="user", customer_id="user-8")

    theirs, mine = _lookups(provider, me, ("2001", "mallory@example.com"), ("2002", None))

    assert theirs == NOT_FOUND
    assert json.loads(mine)["status"] == "processing"
