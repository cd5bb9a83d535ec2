"""Viewers read, support agents act, superusers manage agents: enforced on every action."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group

from conversations.console.benchdata import conversation_long
from conversations.console.models import Replay
from conversations.models import Agent, Conversation, Message, StaffAction, Turn
from conversations.permissions import AGENT, VIEWER
from tests.console.conftest import act_url, conversation_url, logged_in, make_staff, turn_url

pytestmark = pytest.mark.django_db

ACTIONS = ["retry", "take-over", "hand-back", "reply", "note", "resolve", "reopen"]


@pytest.fixture
def conversation(default_agent) -> Conversation:
    # One customer message whose turn failed, so every action has something to act on.
    return conversation_long(agent=default_agent, items=12, fail_last=True)


def _failed_turn(conversation: Conversation) -> Turn:
    return Turn.objects.get(conversation=conversation, status="failed")


def _post_action(client, conversation: Conversation, action: str):
    data = {"text": "hello", "turn": str(_failed_turn(conversation).pk)}
    return client.post(act_url(conversation, action), data)


def _state(conversation: Conversation) -> tuple:
    fresh = Conversation.objects.get(pk=conversation.pk)
    return (
        Message.objects.filter(conversation=conversation).count(),
        Turn.objects.filter(conversation=conversation).count(),
        StaffAction.objects.count(),
        fresh.status,
        fresh.ai_paused,
    )


def test_the_groups_hold_the_documented_permissions(groups):
    viewer = set(Group.objects.get(name=VIEWER).permissions.values_list("content_type__app_label", "codename"))
    agent = set(Group.objects.get(name=AGENT).permissions.values_list("content_type__app_label", "codename"))
    assert viewer == {("conversations", f"view_{m}") for m in ("conversation", "message", "turn", "agent", "staffaction")}
    assert agent - viewer == {
        ("console", c) for c in ("reply_as_staff", "take_over", "retry_turn", "set_status", "add_note", "replay_turn", "try_agent")
    }
    assert all(codename.startswith("view_") for app, codename in agent if app == "conversations")


@pytest.mark.parametrize("action", ACTIONS)
def test_a_viewer_may_not_act(action, conversation, viewer_client):
    before = _state(conversation)
    assert _post_action(viewer_client, conversation, action).status_code == 403
    assert _state(conversation) == before


def test_a_viewer_reads_everything_and_sees_no_action_controls(conversation, viewer_client):
    page = viewer_client.get(conversation_url(conversation))
    assert page.status_code == 200
    html = page.content.decode()
    for control in ("Send reply", "Add note", "Take over", "Resolve", ">Retry<"):
        assert control not in html
    assert "Export transcript" in html
    audit = viewer_client.get(turn_url(_failed_turn(conversation))).content.decode()
    assert "Retry this turn" not in audit and 'name="model"' not in audit
    listing = viewer_client.get("/admin/conversations/conversation/").content.decode()
    assert "retry_failed_turns" not in listing and "action-checkbox" not in listing
    assert viewer_client.get(f"/admin/conversations/conversation/{conversation.pk}/export.txt").status_code == 200


def test_a_viewer_may_not_run_bulk_actions_replay_or_try_agents(conversation, viewer_client):
    turn = _failed_turn(conversation)
    before = _state(conversation)
    viewer_client.post("/admin/conversations/conversation/", {
        "action": "retry_failed_turns", "_selected_action": [str(conversation.pk)],
    })
    viewer_client.post("/admin/conversations/conversation/", {
        "action": "resolve_conversations", "_selected_action": [str(conversation.pk)],
    })
    assert _state(conversation) == before
    assert viewer_client.post(f"/admin/conversations/turn/{turn.pk}/replay/", {}).status_code == 403
    assert not Replay.objects.exists()
    agent_id = conversation.agent_id
    assert viewer_client.post(f"/admin/conversations/agent/{agent_id}/try/").status_code == 403
    assert viewer_client.get(f"/admin/conversations/agent/{agent_id}/change/").status_code == 200


@pytest.mark.parametrize("action", ACTIONS)
def test_a_support_agent_may_act(action, conversation, agent_client, support_agent, offline):
    if action == "hand-back":
        Conversation.objects.filter(pk=conversation.pk).update(ai_paused=True)
    if action == "reopen":
        Conversation.objects.filter(pk=conversation.pk).update(status="resolved")
    response = _post_action(agent_client, conversation, action)
    assert response.status_code == 302
    recorded = {"take-over": "take_over", "hand-back": "hand_back"}.get(action, action)
    assert StaffAction.objects.filter(actor=support_agent, action=recorded).exists()


def test_agents_are_managed_by_superusers_only(default_agent, agent_client, admin_client_):
    form = {
        "name": "Renamed", "model": "", "instructions": "Be kind.", "tools": ["lookup_order"],
        "history_token_budget": 4000, "max_tool_rounds": 3, "reasoning_effort": "",
        "provider_base_url": "", "provider_api_key_env": "",
    }
    url = f"/admin/conversations/agent/{default_agent.pk}/change/"
    assert agent_client.post(url, form).status_code == 403
    assert agent_client.get("/admin/conversations/agent/add/").status_code == 403
    assert agent_client.post(f"/admin/conversations/agent/{default_agent.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Agent.objects.get(pk=default_agent.pk).name == default_agent.name

    assert admin_client_.post(url, form).status_code == 302
    agent = Agent.objects.get(pk=default_agent.pk)
    assert agent.name == "Renamed" and agent.tools == ["lookup_order"] and agent.max_tool_rounds == 3


def test_staff_without_console_permissions_and_strangers_see_nothing(conversation, client):
    url = conversation_url(conversation)
    assert client.get(url)["Location"].startswith("/admin/login/")
    customer = logged_in(make_staff("nobody"))
    assert customer.get(url).status_code == 404
    assert customer.get(turn_url(_failed_turn(conversation))).status_code == 404
    assert customer.get("/admin/conversations/conversation/").status_code == 403
    assert customer.post(act_url(conversation, "take-over")).status_code == 404


def test_try_it_panel_chats_belong_to_their_staff_member(default_agent, agent_client, groups, offline):
    started = agent_client.post(f"/admin/conversations/agent/{default_agent.pk}/try/")
    conversation_id = started.json()["conversation"]
    other = logged_in(make_staff("other-agent", group=AGENT))
    url = f"/admin/conversations/agent/{default_agent.pk}/try/{conversation_id}/messages/"
    assert other.post(url, json.dumps({"text": "hi"}), content_type="application/json").status_code == 404
    assert other.get(f"/admin/conversations/agent/{default_agent.pk}/try/{conversation_id}/items/").status_code == 404
