"""Replay re-sends a turn's recorded request with changes and never touches the conversation."""

from __future__ import annotations

import json

import pytest

from conversations.console.models import Replay
from conversations.models import Agent, Conversation, Message, StaffAction, Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.conftest import wait_for, wait_turn_finished
from tests.console.conftest import turn_url
from tests.fake_provider import calls, text

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "Where is order 1001? I'm ada@example.com"
ARGS = {"order_number": "1001", "email": "ada@example.com"}


def _snapshot(conversation: Conversation) -> dict:
    fresh = Conversation.objects.get(pk=conversation.pk)
    return {
        "items": list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "kind", "text", "turn_id")),
        "turns": list(Turn.objects.filter(conversation=conversation).order_by("created_at").values_list("pk", "status", "attempt")),
        "actions": StaffAction.objects.filter(conversation=conversation).count(),
        "conversation": {
            f: getattr(fresh, f) for f in (
                "next_seq", "message_count", "turn_count", "status", "ai_paused", "has_failed_turn",
                "input_tokens", "output_tokens", "cost", "updated_at", "last_message_preview", "metadata",
            )
        },
    }


def _answered_turn(provider) -> tuple[Conversation, Turn]:
    provider.queue(calls(("lookup_order", ARGS)), text("Order 1001 has shipped."))
    conversation = conversation_create(channel="widget")
    posted = message_post(conversation=conversation, text=QUESTION)
    turn = wait_turn_finished(posted.turn.pk)
    assert turn.status == "completed", turn.error_message
    return conversation, turn


def _finished(replay_id) -> Replay:
    return wait_for(lambda: (r := Replay.objects.get(pk=replay_id)).status != "running" and r)


def test_the_audit_records_each_round_exactly_as_sent(default_agent, provider, agent_client):
    _, turn = _answered_turn(provider)
    assert [len(body["input"]) for body in turn.requests] == [1, 3]
    assert provider.requests[0]["input"] == turn.requests[0]["input"]
    audit = agent_client.get(turn_url(turn)).content.decode()
    assert "Requests sent to the provider" in audit and "Round 2" in audit
    assert "&quot;role&quot;: &quot;user&quot;" in audit and "current" in audit


def test_replay_with_other_instructions_and_model_leaves_the_conversation_unchanged(
    default_agent, provider, agent_client, support_agent
):
    conversation, turn = _answered_turn(provider)
    before = _snapshot(conversation)
    provider.reset()
    # The replayed model asks for the same lookup: the recorded output answers it.
    provider.queue(calls(("lookup_order", ARGS)), text("Your grinder is on its way with UPS!"))

    response = agent_client.post(f"/admin/conversations/turn/{turn.pk}/replay/", {
        "model": "gpt-4.1", "override_instructions": "1", "instructions": "Answer cheerfully.",
    })
    replay = Replay.objects.get(turn=turn)
    assert response["Location"] == f"/admin/conversations/turn/{turn.pk}/replay/{replay.pk}/"
    replay = _finished(replay.pk)

    assert replay.status == "completed" and replay.stop_reason == "answered"
    assert replay.answer == "Your grinder is on its way with UPS!"
    assert replay.actor == support_agent and replay.overrides == {"model": "gpt-4.1", "instructions": True}
    first, second = provider.requests
    assert first["model"] == "gpt-4.1" and first["instructions"] == "Answer cheerfully."
    assert first["input"] == turn.requests[0]["input"] and first["tools"] == turn.requests[0]["tools"]
    recorded_output = next(i for i in turn.requests[1]["input"] if i.get("type") == "function_call_output")["output"]
    assert second["input"][-1]["output"] == recorded_output
    assert replay.tool_calls[0]["name"] == "lookup_order" and replay.tool_calls[0]["recorded_output"] == recorded_output

    assert _snapshot(conversation) == before

    page = agent_client.get(f"/admin/conversations/turn/{turn.pk}/replay/{replay.pk}/").content.decode()
    recorded, replayed = page.split('id="cs-recorded"', 1)[1].split('id="cs-replayed"', 1)
    assert "Order 1001 has shipped." in recorded and "Your grinder is on its way with UPS!" in replayed


def test_replay_never_runs_a_tool_the_recording_did_not_answer(default_agent, provider, agent_client):
    conversation, turn = _answered_turn(provider)
    before = _snapshot(conversation)
    provider.reset()
    provider.queue(calls(("handoff_to_human", {"reason": "wants a person"})))

    agent_client.post(f"/admin/conversations/turn/{turn.pk}/replay/", {})
    replay = _finished(Replay.objects.get(turn=turn).pk)

    assert replay.stop_reason == "unrecorded_tool_call"
    assert replay.tool_calls == [{
        "name": "handoff_to_human", "arguments": json.dumps({"reason": "wants a person"}),
        "recorded_output": None, "round": 1,
    }]
    assert len(provider.requests) == 1
    assert _snapshot(conversation) == before  # the handoff tool did not run: the AI is not paused


def test_replay_against_another_agent_uses_its_instructions_and_tools(default_agent, provider, agent_client):
    conversation, turn = _answered_turn(provider)
    terse = Agent.objects.create(name="Terse", model="gpt-4.1-nano", instructions="One sentence answers.", tools=[])
    provider.reset()
    provider.queue(text("Shipped."))

    agent_client.post(f"/admin/conversations/turn/{turn.pk}/replay/", {"agent": str(terse.pk)})
    replay = _finished(Replay.objects.get(turn=turn).pk)

    assert replay.answer == "Shipped." and replay.agent == terse
    sent = provider.requests[0]
    assert sent["model"] == "gpt-4.1-nano" and sent["instructions"] == "One sentence answers."
    assert "tools" not in sent and sent["input"] == turn.requests[0]["input"]
    assert sent["metadata"]["replay_of"] == str(turn.pk)


def test_a_failing_provider_fails_the_replay_not_the_conversation(default_agent, provider, agent_client):
    from tests.fake_provider import status

    conversation, turn = _answered_turn(provider)
    before = _snapshot(conversation)
    provider.reset()
    provider.queue(status(500, "boom"), status(500, "boom"))
    agent_client.post(f"/admin/conversations/turn/{turn.pk}/replay/", {})
    replay = _finished(Replay.objects.get(turn=turn).pk)
    assert replay.status == "failed" and replay.error_code == "provider_error" and "boom" in replay.error_message
    assert _snapshot(conversation) == before


def test_replay_runs_the_turn_loop_and_its_request_rules(default_agent, provider, agent_client):
    """One loop and one request builder: a replay against a reasoning model gets what a
    real turn of that model gets (no temperature, encrypted reasoning asked for and
    passed back, the cache key and safety identifier), which the copied loop did not."""
    conversation, turn = _answered_turn(provider)
    reasoner = Agent.objects.create(
        name="Reasoner", model="gpt-5-mini", temperature=0.7, instructions="Think first.",
        tools=["lookup_order"],
    )  # a row saved before the capability check existed
    provider.reset()
    provider.queue(calls(("lookup_order", ARGS), reasoning="gAAAA-replayed"), text("Shipped on Monday."))

    agent_client.post(f"/admin/conversations/turn/{turn.pk}/replay/", {"agent": str(reasoner.pk)})
    replay = _finished(Replay.objects.get(turn=turn).pk)

    assert replay.status == "completed", replay.error_message
    assert replay.answer == "Shipped on Monday."
    first, second = provider.requests
    real_turn_body = turn.requests[0]
    for key in ("safety_identifier", "store", "stream"):
        assert first[key] == real_turn_body[key]
    assert first["prompt_cache_key"] == f"agent-{reasoner.pk}-conv-{conversation.pk}"
    assert "temperature" not in first and first["include"] == ["reasoning.encrypted_content"]
    assert [i["encrypted_content"] for i in second["input"] if i["type"] == "reasoning"] == ["gAAAA-replayed"]
    assert replay.requests == provider.requests


async def test_replay_publishes_nothing_to_the_conversation(live_engine, default_agent, provider):
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from conversations.agent.events import group_name
    from conversations.console.replay import replay_run

    conversation, turn = await sync_to_async(_answered_turn)(provider)
    provider.reset()
    provider.queue(calls(("lookup_order", ARGS), commentary="Looking."), text("Shipped."))
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation.pk), channel)
    # The recorded turn's own events may still be on their way (over Redis they arrive
    # after its commit): let them land before the replay runs.
    while True:
        try:
            await asyncio.wait_for(layer.receive(channel), timeout=0.5)
        except TimeoutError:
            break

    replay = await sync_to_async(lambda: Replay.objects.create(
        turn=turn, model="gpt-4.1-mini", requests=turn.requests[:1],
    ))()
    await replay_run(replay.pk, engine=live_engine)

    replay = await Replay.objects.aget(pk=replay.pk)
    assert replay.status == "completed" and replay.answer == "Shipped."
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=0.5)


def test_a_redacted_turn_replays_from_its_recording_with_placeholders(default_agent, provider, agent_client):
    # Given a turn of an agent that redacts: the recording holds placeholders only
    default_agent.pii_redaction = True
    default_agent.save()
    provider.queue(calls(("lookup_order", {"order_number": "1001", "email": "<EMAIL_1>"})), text("Shipped."))
    conversation = conversation_create(channel="widget")
    turn = wait_turn_finished(message_post(conversation=conversation, text=QUESTION).turn.pk)
    assert turn.status == "completed", turn.error_message
    assert "ada@example.com" not in json.dumps(turn.requests)
    provider.reset()
    # The replayed model asks for the same lookup, with the placeholder it was shown
    provider.queue(calls(("lookup_order", {"order_number": "1001", "email": "<EMAIL_1>"})), text("On its way."))

    agent_client.post(f"/admin/conversations/turn/{turn.pk}/replay/", {})
    replay = _finished(Replay.objects.get(turn=turn).pk)

    # Then the recorded (redacted) output answers it and no value reached the provider
    assert replay.status == "completed" and replay.stop_reason == "answered", replay.error_message
    assert replay.answer == "On its way."
    assert "ada@example.com" not in json.dumps(provider.requests)
    assert provider.requests[0]["input"] == turn.requests[0]["input"]
