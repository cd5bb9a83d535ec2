"""PII redaction in the console: the agent page turns it on and takes extra patterns
(refusing invalid ones), and the turn audit says what was redacted without the values."""

from __future__ import annotations

import pytest
from django.db import transaction

from conversations.models import Agent, Conversation, Turn
from conversations.services.items import item_append
from tests.console.conftest import turn_url

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Careful", "model": "gpt-4.1-mini", "instructions": "Short answers.", "tools": ["lookup_order"],
    "history_token_budget": 3000, "max_tool_rounds": 2, "reasoning_effort": "",
    "provider_base_url": "", "provider_api_key_env": "", "model_capabilities": "{}",
}


def test_the_agent_page_turns_redaction_on_with_extra_patterns(default_agent, admin_client_):
    # Given the agent page
    page = admin_client_.get(f"/admin/conversations/agent/{default_agent.pk}/change/").content.decode()
    assert "Privacy" in page and 'name="pii_redaction"' in page and 'name="pii_patterns"' in page

    # When a superuser saves an agent with redaction on and a pattern
    response = admin_client_.post("/admin/conversations/agent/add/", {
        **FORM, "pii_redaction": "on", "pii_patterns": '[{"label": "ORDER_REF", "pattern": "ORD-[0-9]{6}"}]',
    })

    # Then it is stored so
    assert response.status_code == 302
    agent = Agent.objects.get(name="Careful")
    assert agent.pii_redaction is True
    assert agent.pii_patterns == [{"label": "ORDER_REF", "pattern": "ORD-[0-9]{6}"}]


def test_an_invalid_pattern_is_refused_on_the_form(default_agent, admin_client_):
    response = admin_client_.post("/admin/conversations/agent/add/", {
        **FORM, "pii_redaction": "on", "pii_patterns": '[{"label": "ORDER_REF", "pattern": "ORD-("}]',
    })
    assert response.status_code == 200
    assert "not a valid regular expression" in response.content.decode()
    assert not Agent.objects.filter(name="Careful").exists()


def test_new_agents_do_not_redact(default_agent, admin_client_):
    admin_client_.post("/admin/conversations/agent/add/", FORM)
    agent = Agent.objects.get(name="Careful")
    assert agent.pii_redaction is False and agent.pii_patterns == []


def _turn(agent: Agent, redactions: dict) -> Turn:
    conversation = Conversation.objects.create(agent=agent, customer_id="v1", channel="widget")
    with transaction.atomic():
        user = item_append(conversation=conversation, kind="user", text="I'm ada@example.com")
    return Turn.objects.create(
        conversation=conversation, user_message=user, agent=agent, status="completed", redactions=redactions,
        requests=[{"model": "m", "input": [{"type": "message", "role": "user", "content": "I'm <EMAIL_1>"}]}],
    )


def test_the_turn_audit_shows_which_kinds_were_redacted(default_agent, admin_client_):
    turn = _turn(default_agent, {"enabled": True, "kinds": {
        "EMAIL": {"values": 1, "replacements": 2}, "CARD": {"values": 2, "replacements": 2},
    }})
    audit = admin_client_.get(turn_url(turn)).content.decode()
    assert 'id="cs-redactions"' in audit
    assert "CARD: 2 values, 2 replacements" in audit and "EMAIL: 1 value, 2 replacements" in audit
    assert "&lt;EMAIL_1&gt;" in audit  # the request as sent


def test_the_turn_audit_of_a_turn_without_redaction_says_nothing_about_it(default_agent, admin_client_):
    audit = admin_client_.get(turn_url(_turn(default_agent, {}))).content.decode()
    assert 'id="cs-redactions"' not in audit
    on_nothing = admin_client_.get(turn_url(_turn(default_agent, {"enabled": True, "kinds": {}}))).content.decode()
    assert "Redaction on; nothing found" in on_nothing
