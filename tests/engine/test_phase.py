"""`phase` on assistant messages (issue 15, finding 2): passed back unchanged, stored
with the answer, and commentary is progress, never the customer's answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations.agent.events import group_name
from conversations.models import Message, Turn
from conversations.services.messages import message_post
from tests.engine.support import answered, ask, items_of
from tests.fake_provider import calls, text

pytestmark = pytest.mark.django_db(transaction=True)

ADA_1001 = {"order_number": "1001", "email": "ada@example.com"}


@pytest.fixture
def phase_agent(agent):
    agent.model = "gpt-5.4"
    agent.save(update_fields=["model"])
    return agent


def test_commentary_is_passed_back_with_its_phase_and_never_stored_as_the_answer(
    conversation, provider, phase_agent
):
    provider.queue(
        calls(("lookup_order", ADA_1001), commentary="Let me look that up for you."),
        text("Order 1001 shipped yesterday.", phase="final_answer"),
    )

    turn = answered(ask(conversation, "Where is 1001? ada@example.com"))

    assert turn.status == "completed", turn.error_message
    passed = [item for item in provider.requests[1]["input"] if item.get("role") == "assistant"]
    assert passed == [{"type": "message", "role": "assistant", "content": "Let me look that up for you.",
                       "phase": "commentary"}]
    answers = items_of(conversation, "assistant")
    assert [a.text for a in answers] == ["Order 1001 shipped yesterday."]
    assert answers[0].metadata.get("phase") == "final_answer"
    # Visible in the audit, on the round that streamed it.
    assert turn.rounds[0]["commentary"] == ["Let me look that up for you."]
    assert "Let me look that up" not in turn.partial_text


def test_the_stored_phase_goes_back_in_later_turns(conversation, provider, phase_agent):
    provider.queue(text("Hello! How can I help?", phase="final_answer"), text("Sure.", phase="final_answer"))
    answered(ask(conversation, "Hi"))

    answered(ask(conversation, "Can you help me?"))

    earlier = [item for item in provider.requests[1]["input"] if item.get("role") == "assistant"]
    assert earlier == [{"type": "message", "role": "assistant", "content": "Hello! How can I help?",
                        "phase": "final_answer"}]


def test_phaseless_answers_stay_phaseless(conversation, provider, agent):
    provider.queue(text("Hello!"), text("Sure."))
    answered(ask(conversation, "Hi"))
    answered(ask(conversation, "Again"))
    earlier = [item for item in provider.requests[1]["input"] if item.get("role") == "assistant"]
    assert earlier == [{"type": "message", "role": "assistant", "content": "Hello!"}]


def test_a_turn_that_only_commented_has_no_answer(conversation, provider, phase_agent):
    provider.queue(text("Let me check.", phase="commentary"))
    turn = answered(ask(conversation, "Where is my order?"))
    assert turn.status == "failed" and turn.error_code == "provider_error"
    assert not Message.objects.filter(conversation=conversation, kind="assistant").exists()


async def _subscribe(conversation_id: Any) -> tuple[Any, str]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation_id), channel)
    return layer, channel


async def test_commentary_streams_as_progress_not_as_answer_text(bound, conversation, provider, phase_agent):
    provider.queue(
        calls(("lookup_order", ADA_1001), commentary="Checking your order now."),
        text("It shipped.", phase="final_answer"),
    )
    layer, channel = await _subscribe(conversation.pk)

    posted = await sync_to_async(message_post)(conversation=conversation, text="Where is 1001? ada@example.com")
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] not in ("turn.completed", "turn.failed"):
        seen.append((await asyncio.wait_for(layer.receive(channel), timeout=10))["event"])

    assert seen[-1]["type"] == "turn.completed"
    commentary = "".join(e["delta"] for e in seen if e["type"] == "turn.commentary")
    answer = "".join(e["delta"] for e in seen if e["type"] == "text.delta")
    assert commentary == "Checking your order now."
    assert answer == "It shipped."
    assert all(e["turn"] == str(posted.turn.pk) for e in seen if e["type"] == "turn.commentary")
    turn = await Turn.objects.aget(pk=posted.turn.pk)
    assert turn.status == "completed"


def test_the_offline_model_speaks_phase_when_asked_as_a_model_that_uses_it():
    from tests.engine.test_spec import _offline_events
    from tests.spec.openai_schema import assert_valid_event

    request = {"model": "gpt-5.4", "stream": True, "input": [
        {"type": "message", "role": "user", "content": "Where is order 1001? ada@example.com"}],
        "tools": [{"type": "function", "name": "lookup_order", "description": "d", "strict": True, "parameters": {
            "type": "object", "properties": {}, "required": [], "additionalProperties": False}}]}
    events = _offline_events(request)
    for event in events:
        assert_valid_event(event)
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["type"] == "message" and done[0]["phase"] == "commentary"
    assert done[1]["type"] == "function_call"

    answer = _offline_events({**request, "model": "gpt-5.4", "input": [
        {"type": "message", "role": "user", "content": "What are your opening hours?"}]})
    message = next(e["item"] for e in answer if e["type"] == "response.output_item.done")
    assert message["phase"] == "final_answer"
    plain = _offline_events({**request, "model": "offline-support-1", "input": request["input"]})
    assert all("phase" not in e.get("item", {}) for e in plain)
