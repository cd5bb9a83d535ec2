"""Staff actions from the console: retry (one and in bulk), take over, reply, hand back,
resolve / reopen, notes and exports. Each goes through the services and is recorded."""

from __future__ import annotations

import json

import pytest

from conversations.models import Conversation, Message, StaffAction, Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.conftest import wait_for, wait_turn_finished
from tests.console.conftest import act_url, conversation_url, turn_url
from tests.fake_provider import status, text

pytestmark = pytest.mark.django_db(transaction=True)


def _failed_conversation(provider, customer: str = "ada") -> tuple[Conversation, Turn]:
    """A conversation whose first turn failed: the provider answered 500 to the request
    and to the SDK's one retry."""
    provider.queue(status(500, "upstream overloaded"), status(500, "upstream overloaded"))
    conversation = conversation_create(channel="widget", customer_id=customer, customer_kind="user")
    posted = message_post(conversation=conversation, text="Where is my order 1001?")
    turn = wait_turn_finished(posted.turn.id)
    assert turn.status == "failed" and turn.error_code == "provider_error", turn.error_message
    return conversation, turn


def test_retry_from_the_conversation_page_turns_a_failed_turn_into_a_completed_one(
    default_agent, provider, agent_client, support_agent
):
    conversation, failed = _failed_conversation(provider)
    page = agent_client.get(conversation_url(conversation)).content.decode()
    assert "failed turn" in page and "Retry" in page and "upstream overloaded" in page

    provider.queue(text("Order 1001 shipped yesterday."))
    response = agent_client.post(act_url(conversation, "retry"), {"turn": str(failed.pk)})
    assert response.status_code == 302 and response["Location"] == conversation_url(conversation)

    retry = Turn.objects.get(retry_of=failed)
    assert retry.attempt == 2 and retry.trigger == "staff_retry" and retry.triggered_by == support_agent
    assert wait_turn_finished(retry.pk).status == "completed"
    conversation.refresh_from_db()
    assert not conversation.has_failed_turn
    answer = Message.objects.get(conversation=conversation, kind="assistant")
    assert answer.text == "Order 1001 shipped yesterday." and answer.turn_id == retry.pk
    action = StaffAction.objects.get(conversation=conversation, action="retry")
    assert action.actor == support_agent and action.turn == retry

    page = agent_client.get(conversation_url(conversation)).content.decode()
    assert "attempt 1" in page and "attempt 2" in page
    assert 'data-state="failed" hidden' in page and 'id="cs-failed"' not in page
    audit = agent_client.get(turn_url(retry)).content.decode()
    assert "Staff retry by sam" in audit and "Chain of attempts" in audit


def test_retry_from_the_turn_audit_page_returns_to_the_audit(default_agent, provider, agent_client):
    conversation, failed = _failed_conversation(provider)
    audit = agent_client.get(turn_url(failed)).content.decode()
    assert "Retry this turn" in audit
    response = agent_client.post(act_url(conversation, "retry"), {"turn": str(failed.pk), "next": turn_url(failed)})
    assert response["Location"] == turn_url(failed)
    assert wait_turn_finished(Turn.objects.get(retry_of=failed).pk).status == "completed"


def test_bulk_retry_retries_every_failed_conversation_selected(default_agent, provider, agent_client, support_agent):
    provider.queue(*[status(500) for _ in range(8)])
    failed = []
    for index in range(4):
        conversation = conversation_create(channel="widget", customer_id=f"outage-{index}", customer_kind="user")
        failed.append(message_post(conversation=conversation, text=f"Hello {index}").turn)
    for turn in failed:
        assert wait_turn_finished(turn.pk).status == "failed"
    healthy = conversation_create(channel="widget", customer_id="healthy", customer_kind="user")

    response = agent_client.post("/admin/conversations/conversation/", {
        "action": "retry_failed_turns",
        "_selected_action": [str(t.conversation_id) for t in failed] + [str(healthy.pk)],
    })
    assert response.status_code == 302
    retries = wait_for(lambda: (r := list(Turn.objects.filter(retry_of__in=failed))) and len(r) == 4 and r)
    for retry in retries:
        assert wait_turn_finished(retry.pk).status == "completed"
    assert not Conversation.objects.filter(has_failed_turn=True).exists()
    assert StaffAction.objects.filter(action="retry", actor=support_agent).count() == 4
    assert not Turn.objects.filter(conversation=healthy).exists()


def test_bulk_retry_reports_conversations_it_cannot_retry(default_agent, provider, agent_client):
    conversation, failed = _failed_conversation(provider)
    agent_client.post(act_url(conversation, "take-over"))
    response = agent_client.post("/admin/conversations/conversation/", {
        "action": "retry_failed_turns", "_selected_action": [str(conversation.pk)],
    }, follow=True)
    assert "1 not retried: The AI is paused" in response.content.decode()
    assert not Turn.objects.filter(retry_of=failed).exists()


def test_take_over_reply_and_hand_back(default_agent, offline, agent_client, support_agent):
    conversation = conversation_create(channel="widget")
    first = message_post(conversation=conversation, text="I want to talk to a human about a refund")
    wait_turn_finished(first.turn.pk)

    agent_client.post(act_url(conversation, "take-over"))
    conversation.refresh_from_db()
    assert conversation.ai_paused

    response = agent_client.post(act_url(conversation, "reply"), {"text": "Hi, Sam here. Let me look.", "client_id": "r1"})
    assert response.status_code == 302
    again = agent_client.post(act_url(conversation, "reply"), {"text": "Hi, Sam here. Let me look.", "client_id": "r1"})
    assert again.status_code == 302
    staff = Message.objects.filter(conversation=conversation, kind="staff")
    assert staff.count() == 1 and staff.get().author == support_agent  # double submit: one reply

    # The customer answers: stored, and the AI stays quiet while a person has the chat.
    posted = message_post(conversation=conversation, text="Thanks, it was order 1001")
    assert posted.turn is None

    agent_client.post(act_url(conversation, "hand-back"))
    conversation.refresh_from_db()
    assert not conversation.ai_paused
    resumed = Turn.objects.get(user_message=posted.message)
    assert resumed.trigger == "handback"
    assert wait_turn_finished(resumed.pk).status == "completed"

    actions = list(StaffAction.objects.filter(conversation=conversation).order_by("created_at").values_list("action", flat=True))
    assert actions == ["take_over", "reply", "hand_back"]


def test_resolve_reopen_and_internal_note(default_agent, offline, agent_client, support_agent):
    conversation = conversation_create(channel="widget")
    agent_client.post(act_url(conversation, "note"), {"text": "VIP customer <b>careful</b>"})
    agent_client.post(act_url(conversation, "resolve"))
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    page = agent_client.get(conversation_url(conversation)).content.decode()
    assert "Internal note · sam" in page and "VIP customer &lt;b&gt;careful&lt;/b&gt;" in page
    assert "Reopen" in page
    agent_client.post(act_url(conversation, "reopen"))
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert list(StaffAction.objects.filter(conversation=conversation).order_by("created_at").values_list("action", flat=True)) == [
        "note", "resolve", "reopen",
    ]
    note = Message.objects.get(conversation=conversation, kind="note")
    assert note.turn is None and not Turn.objects.filter(conversation=conversation).exists()


def test_refused_actions_are_explained_not_raised(default_agent, offline, agent_client):
    conversation = conversation_create(channel="widget")
    response = agent_client.post(act_url(conversation, "reply"), {"text": "   "}, follow=True)
    assert response.status_code == 200 and "Message text is empty." in response.content.decode()
    response = agent_client.post(act_url(conversation, "retry"), {"turn": "not-a-uuid"}, follow=True)
    assert "Turn not found." in response.content.decode()
    assert agent_client.get(act_url(conversation, "resolve")).status_code == 405
    assert agent_client.post(act_url(conversation, "explode")).status_code == 404


def test_exports_hold_the_whole_transcript(default_agent, offline, viewer_client):
    conversation = conversation_create(channel="widget", customer_name="Ada")
    posted = message_post(conversation=conversation, text="Where is order 1001? ada@example.com")
    wait_turn_finished(posted.turn.pk)

    response = viewer_client.get(f"/admin/conversations/conversation/{conversation.pk}/export.json")
    assert response["Content-Disposition"].endswith(f'conversation-{conversation.pk}.json"')
    data = json.loads(b"".join(response.streaming_content))
    assert data["conversation"]["id"] == str(conversation.pk)
    assert [item["kind"] for item in data["items"]] == ["user", "function_call", "function_output", "assistant"]
    assert [item["seq"] for item in data["items"]] == [1, 2, 3, 4]

    response = viewer_client.get(f"/admin/conversations/conversation/{conversation.pk}/export.txt")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == f"Conversation {conversation.pk}"
    assert any("#1 Customer: Where is order 1001?" in line for line in lines)
    assert any("#2 Tool call: lookup_order(" in line for line in lines)
    assert any("#4 AI: " in line for line in lines)
    assert viewer_client.get(f"/admin/conversations/conversation/{conversation.pk}/export.xml").status_code == 404
