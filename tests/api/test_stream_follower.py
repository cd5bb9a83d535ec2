"""The stream follower treats channel-layer events as hints and the database as truth."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.agent.events import CHANNEL_MESSAGE_TYPE, group_name, message_event
from conversations.api import streaming
from conversations.models import Conversation, Message, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import TurnStatus
from conversations.services.items import items_append

pytestmark = pytest.mark.django_db(transaction=True)


def _conversation_with_turn(agent):
    conversation = Conversation.objects.create(agent=agent, customer_id="c")
    with transaction.atomic():
        [user] = items_append(conversation=conversation, items=[{"kind": MessageKind.USER, "text": "hi"}])
    turn = Turn.objects.create(conversation=conversation, user_message=user, agent=agent, status=TurnStatus.RUNNING)
    return conversation, user, turn


def _answer(conversation, turn, text="Hello!"):
    with transaction.atomic():
        [answer] = items_append(
            conversation=conversation, items=[{"kind": MessageKind.ASSISTANT, "text": text, "turn": turn}]
        )
    Turn.objects.filter(pk=turn.pk).update(status=TurnStatus.COMPLETED)
    return answer


async def test_every_hint_lost_the_stream_still_ends_with_the_stored_answer(default_agent, monkeypatch):
    monkeypatch.setattr(streaming, "POLL_SECONDS", 0.05)
    conversation, user, turn = await sync_to_async(_conversation_with_turn)(default_agent)
    subscription = streaming.Subscription(conversation.pk)  # never joins the group: every event is lost
    events = streaming.follow_turn(
        subscription, conversation_id=str(conversation.pk), turn_id=str(turn.pk), after_seq=user.seq - 1,
        internal=False, first=[message_event(user)], max_seconds=10,
    )
    received = [await events.__anext__()]
    answer = await sync_to_async(_answer)(conversation, turn)
    received += [event async for event in events]
    assert [e["type"] for e in received] == ["message", "message", "turn.completed"]
    assert received[1]["seq"] == answer.seq and received[2]["message_seq"] == answer.seq


async def test_a_message_seen_as_a_hint_and_in_the_database_is_sent_once(default_agent, monkeypatch):
    monkeypatch.setattr(streaming, "POLL_SECONDS", 0.05)
    conversation, user, turn = await sync_to_async(_conversation_with_turn)(default_agent)
    subscription = streaming.Subscription(conversation.pk)
    layer = get_channel_layer()
    subscription.channel = await layer.new_channel()
    await layer.group_add(subscription.group, subscription.channel)
    events = streaming.follow_turn(
        subscription, conversation_id=str(conversation.pk), turn_id=str(turn.pk), after_seq=user.seq - 1,
        internal=False, first=[message_event(user)], max_seconds=10,
    )
    assert (await events.__anext__())["type"] == "message"
    answer = await sync_to_async(_answer)(conversation, turn)
    # The hint for the answer arrives, but the turn.completed hint is lost.
    await layer.group_send(group_name(conversation.pk), {"type": CHANNEL_MESSAGE_TYPE, "event": message_event(answer)})
    received = [event async for event in events]
    assert [e["type"] for e in received] == ["message", "turn.completed"]
    # The subscription left the group when the stream ended.
    assert subscription.closed
    if hasattr(layer, "groups"):  # the in-memory layer shows its membership; Redis does not
        assert subscription.channel not in layer.groups.get(subscription.group, {})


async def test_internal_notes_are_not_streamed_to_customers(default_agent, monkeypatch):
    monkeypatch.setattr(streaming, "POLL_SECONDS", 0.05)
    conversation, user, turn = await sync_to_async(_conversation_with_turn)(default_agent)

    def note_and_answer():
        with transaction.atomic():
            items_append(conversation=conversation, items=[{"kind": MessageKind.NOTE, "text": "VIP, be nice"}])
        _answer(conversation, turn)

    await sync_to_async(note_and_answer)()
    for internal, expected in [(False, ["message", "turn.completed"]), (True, ["message", "message", "turn.completed"])]:
        events = streaming.follow_turn(
            streaming.Subscription(conversation.pk), conversation_id=str(conversation.pk), turn_id=str(turn.pk),
            after_seq=user.seq, internal=internal, first=[], max_seconds=10, check_first=True,
        )
        received = [event async for event in events]
        assert [e["type"] for e in received] == expected
        assert any(e.get("message", {}).get("kind") == "note" for e in received) is internal
    assert await sync_to_async(Message.objects.filter(kind="note").count)() == 1


async def test_a_stream_that_outlives_its_limit_says_so(default_agent, monkeypatch):
    monkeypatch.setattr(streaming, "POLL_SECONDS", 0.05)
    conversation, user, turn = await sync_to_async(_conversation_with_turn)(default_agent)
    events = streaming.follow_turn(
        streaming.Subscription(conversation.pk), conversation_id=str(conversation.pk), turn_id=str(turn.pk),
        after_seq=user.seq, internal=False, first=[], max_seconds=0.2,
    )
    received = [event async for event in events]
    assert received[-1] == {"type": "stream.timeout", "conversation": str(conversation.pk), "turn": str(turn.pk)}
