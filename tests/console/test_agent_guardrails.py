"""Guardrails in the console: the agent page takes blocked patterns and the reply
(refusing invalid patterns), and the turn audit names each refusal by its label."""

from __future__ import annotations

import pytest
from django.db import transaction

from conversations.models import Agent, Conversation, Turn
from conversations.services.items import item_append
from tests.console.conftest import turn_url
from tests.console.test_agent_privacy import FORM

pytestmark = pytest.mark.django_db


def test_the_agent_page_takes_blocked_patterns_and_the_reply(default_agent, admin_client_):
    page = admin_client_.get(f"/admin/conversations/agent/{default_agent.pk}/change/").content.decode()
    assert "Guardrails" in page and 'name="blocked_input_patterns"' in page and 'name="guardrail_reply"' in page

    response = admin_client_.post("/admin/conversations/agent/add/", {
        **FORM, "blocked_input_patterns": '[{"label": "GAMBLING", "pattern": "\\\\bcasino\\\\b"}]',
        "blocked_output_patterns": "[]", "guardrail_reply": "Orders only here, sorry.", "pii_patterns": "[]",
    })

    assert response.status_code == 302
    agent = Agent.objects.get(name="Careful")
    assert agent.blocked_input_patterns == [{"label": "GAMBLING", "pattern": "\\bcasino\\b"}]
    assert agent.guardrail_reply == "Orders only here, sorry."


def test_an_invalid_blocked_pattern_is_refused_on_the_form(default_agent, admin_client_):
    response = admin_client_.post("/admin/conversations/agent/add/", {
        **FORM, "blocked_output_patterns": '[{"label": "CODE", "pattern": "STAFF-("}]', "pii_patterns": "[]",
        "blocked_input_patterns": "[]",
    })

    assert response.status_code == 200
    assert "not a valid regular expression" in response.content.decode()
    assert not Agent.objects.filter(name="Careful").exists()


def test_the_turn_audit_names_each_refusal(default_agent, admin_client_):
    conversation = Conversation.objects.create(agent=default_agent, customer_id="v1", channel="widget")
    with transaction.atomic():
        user = item_append(conversation=conversation, kind="user", text="Which casino?")
    turn = Turn.objects.create(
        conversation=conversation, user_message=user, agent=default_agent, status="completed",
        guardrails=[{"stage": "input", "guard": "blocklist", "action": "refuse", "label": "GAMBLING"}],
    )

    audit = admin_client_.get(turn_url(turn)).content.decode()

    assert 'id="cs-guardrails"' in audit and "input refused by blocklist: GAMBLING" in audit
