"""Streaming: text deltas reach channel-layer subscribers while the turn is still running,
and the stored answer is exactly what was streamed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations.agent.events import group_name
from conversations.models import Message, Turn
from conversations.services.messages import message_post
from tests.fake_provider import text

pytestmark = pytest.mark.django_db(transaction=True)


async def _subscribe(conversation_id: Any) -> tuple[Any, str]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation_id), channel)
    return layer, channel


async def _next_event(layer: Any, channel: str) -> dict[str, Any]:
    message = await asyncio.wait_for(layer.receive(channel), timeout=10)
    return message["event"]


async def test_text_deltas_are_published_before_the_turn_completes(bound, conversation, provider, gates):
    # Given a model that streams two words, then holds its stream open
    gate = gates()
    provider.queue(text("Your parcel ships tomorrow morning.", gate=gate, pause_after=2))
    layer, channel = await _subscribe(conversation.pk)

    # When the customer asks
    posted = await sync_to_async(message_post)(conversation=conversation, text="When does it ship?")
    seen = []
    while not seen or seen[-1]["type"] != "text.delta":
        seen.append(await _next_event(layer, channel))

    # Then the first delta arrived while the turn is running and nothing is stored yet
    turn = await Turn.objects.aget(pk=posted.turn.pk)
    assert turn.status == "running"
    assert not await Message.objects.filter(conversation=conversation, kind="assistant").aexists()
    assert seen[-1]["turn"] == str(turn.pk) and seen[-1]["conversation"] == str(conversation.pk)
    assert [e["type"] for e in seen[:-1]] == ["message", "turn.queued", "turn.started"]

    # And when the model finishes, the answer is stored once and announced after the deltas
    gate.set()
    while seen[-1]["type"] != "turn.completed":
        seen.append(await _next_event(layer, channel))
    deltas = "".join(e["delta"] for e in seen if e["type"] == "text.delta")
    assert deltas == "Your parcel ships tomorrow morning."
    answer = await Message.objects.aget(conversation=conversation, kind="assistant")
    assert answer.text == deltas
    stored = [e for e in seen if e["type"] == "message" and e["message"]["kind"] == "assistant"]
    assert stored[0]["seq"] == answer.seq == seen[-1]["message_seq"]
    order = [e["type"] for e in seen]
    assert order.index("turn.completed") > max(i for i, t in enumerate(order) if t == "text.delta")

    turn = await Turn.objects.aget(pk=posted.turn.pk)
    assert turn.status == "completed"
    assert turn.time_to_first_token_ms is not None and turn.latency_ms >= turn.time_to_first_token_ms
    assert (turn.input_tokens, turn.output_tokens) == (100, 20)
    assert turn.partial_text == ""


async def test_a_customer_who_leaves_still_gets_the_answer_stored(bound, conversation, provider):
    # Given nobody subscribed to the conversation at all
    provider.queue(text("Stored for when you come back."))

    # When a message is posted and the poster goes away
    posted = await sync_to_async(message_post)(conversation=conversation, text="Hello?")
    await bound.wait_idle(10)

    # Then the answer is stored and the turn completed
    turn = await Turn.objects.aget(pk=posted.turn.pk)
    assert turn.status == "completed"
    answer = await Message.objects.aget(conversation=conversation, kind="assistant")
    assert answer.text == "Stored for when you come back."
