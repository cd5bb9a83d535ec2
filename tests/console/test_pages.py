"""What the console pages show: text always as text, tool calls, the agent admin."""

from __future__ import annotations

import json

import pytest

from conversations.models import Agent, Conversation, Message, Turn
from conversations.services.items import item_append
from tests.console.conftest import conversation_url, turn_url

pytestmark = pytest.mark.django_db

SCRIPT = '<script>alert("owned")</script>'
IMG = "<img src=x onerror=alert(1)>"


def _hostile_conversation(agent: Agent) -> tuple[Conversation, Turn]:
    from django.db import transaction

    conversation = Conversation.objects.create(
        agent=agent, customer_id=f"visitor-{SCRIPT}", customer_name=SCRIPT, metadata={"page": SCRIPT}, channel="widget",
    )
    with transaction.atomic():
        user = item_append(conversation=conversation, kind="user", text=f"Hi {SCRIPT}")
    turn = Turn.objects.create(
        conversation=conversation, user_message=user, agent=agent, status="failed",
        error_code="provider_error", error_message=f"HTTP 500 {IMG}", partial_text=f"half {IMG}",
        requests=[{"model": "m", "input": [{"type": "message", "role": "user", "content": f"Hi {SCRIPT}"}]}],
        history=[{"message_id": user.pk, "seq": 1, "kind": "user", "tokens": 9, "reason": "current", "score": None}],
    )
    with transaction.atomic():
        item_append(conversation=conversation, kind="function_call", tool_name="lookup_order", call_id="c1",
                    tool_arguments=json.dumps({"order_number": SCRIPT}), turn=turn)
        item_append(conversation=conversation, kind="function_output", tool_name="lookup_order", call_id="c1",
                    text=json.dumps({"note": IMG}), turn=turn)
        item_append(conversation=conversation, kind="assistant", text=f"Answer {IMG}", turn=turn)
    return conversation, turn


def test_customer_model_and_tool_text_is_rendered_as_text_everywhere(default_agent, admin_client_):
    conversation, turn = _hostile_conversation(default_agent)
    pages = [
        "/admin/conversations/conversation/",
        conversation_url(conversation),
        f"/admin/conversations/conversation/{conversation.pk}/items/?after=0",
        turn_url(turn),
        "/admin/conversations/turn/",
    ]
    for url in pages:
        html = admin_client_.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html, url
    page = admin_client_.get(conversation_url(conversation)).content.decode()
    assert "Hi &lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_tool_calls_show_arguments_and_outputs_as_collapsible_pretty_json(default_agent, admin_client_):
    conversation, turn = _hostile_conversation(default_agent)
    page = admin_client_.get(conversation_url(conversation)).content.decode()
    tool = page.split('<details class="cs-tool">', 1)[1].split("</details>", 1)[0]
    assert "AI called" in tool and "<code>lookup_order</code>" in tool
    assert '&quot;order_number&quot;: &quot;&lt;script&gt;' in tool  # indented JSON, escaped
    assert '&quot;note&quot;: &quot;&lt;img' in tool
    assert f'href="/admin/conversations/turn/{turn.pk}/change/"' in page  # the AI message links to its turn


def test_the_turn_audit_explains_the_turn(default_agent, admin_client_):
    conversation, turn = _hostile_conversation(default_agent)
    audit = admin_client_.get(turn_url(turn)).content.decode()
    for expected in ("Provider error", "HTTP 500", "Text streamed before it stopped", "Chain of attempts",
                     "History selected", "current", "Requests sent to the provider", "Copy", "Replay"):
        assert expected in audit, expected
    assert admin_client_.get("/admin/conversations/turn/00000000-0000-0000-0000-000000000000/change/").status_code == 404


def test_the_agent_admin_offers_registry_tools_with_schemas_and_moves_the_default(default_agent, admin_client_):
    page = admin_client_.get(f"/admin/conversations/agent/{default_agent.pk}/change/").content.decode()
    assert 'value="lookup_order"' in page and 'value="handoff_to_human"' in page
    assert "Tool schemas" in page and "&quot;additionalProperties&quot;: false" in page
    assert 'id="cs-try"' in page and "Try it" in page

    response = admin_client_.post("/admin/conversations/agent/add/", {
        "name": "Night shift", "model": "gpt-4.1-mini", "instructions": "Short answers.", "tools": ["lookup_order"],
        "history_token_budget": 3000, "max_tool_rounds": 2, "reasoning_effort": "", "make_default": "on",
        "provider_base_url": "", "provider_api_key_env": "",
    })
    assert response.status_code == 302
    assert list(Agent.objects.filter(is_default=True).values_list("name", flat=True)) == ["Night shift"]
    assert Agent.objects.get(name="Night shift").tools == ["lookup_order"]


def test_viewers_see_agents_read_only_without_the_try_it_panel(default_agent, viewer_client):
    page = viewer_client.get(f"/admin/conversations/agent/{default_agent.pk}/change/").content.decode()
    assert "Yes: new conversations use this agent." in page and 'id="cs-try"' not in page and 'name="instructions"' not in page


def test_staff_actions_and_turn_lists_render(default_agent, admin_client_, superuser):
    conversation, _ = _hostile_conversation(default_agent)
    admin_client_.post(f"/admin/conversations/conversation/{conversation.pk}/act/take-over/")
    listing = admin_client_.get("/admin/conversations/staffaction/").content.decode()
    assert "take_over" in listing and "root" in listing
    turns = admin_client_.get("/admin/conversations/turn/?status__exact=failed").content.decode()
    assert "Failed" in turns and "1 turn" in turns
    found = admin_client_.get(f"/admin/conversations/turn/?q={conversation.pk}").content.decode()
    assert "1 turn" in found
    assert Message.objects.filter(conversation=conversation).count() == 4
