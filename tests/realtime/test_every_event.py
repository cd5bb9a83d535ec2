"""Every consumer of a conversation's group handles every message the group can carry.

Channels closes a consumer that receives a message type it has no handler for ("No
handler for message type ..."): the staff console's socket used to crash on the
widget's typing hints, reconnect and re-download the transcript on every keystroke.
Here each event the system emits (every builder in `conversations.agent.events`, sent
as the engine sends it) and the widget's typing hint reach each websocket consumer
through the real ASGI stack; the socket must stay open and still relay what follows.
The API's Server-Sent Events stream, the group's other member, gets the same and must
relay the engine's events, skip the typing hints and end with its turn's answer.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import AsyncClient

from conversations.access import visitor_token_issue
from conversations.agent import events
from conversations.agent.engine import engine
from conversations.models import Conversation
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from conversations.widget.consumer import TYPING_MESSAGE_TYPE
from tests import fake_provider as fp
from tests.api.sse import events as sse_events
from tests.console.conftest import logged_in, make_staff
from tests.realtime.test_consumer import path_for
from tests.realtime.wsclient import WsClient, of_type

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


def _conversation_with_a_message() -> tuple[Conversation, Any]:
    conversation = conversation_create(channel="widget")
    Conversation.objects.filter(pk=conversation.pk).update(ai_paused=True)  # no turn runs
    conversation.refresh_from_db()
    message = message_post(conversation=conversation, text="Where is order 1001?").message
    conversation.refresh_from_db()
    return conversation, message


def samples(conversation: Conversation, message: Any) -> dict[str, dict[str, Any]]:
    """One event from each builder, keyed by the builder's name."""
    cid = str(conversation.pk)
    turn = SimpleNamespace(
        id="00000000-0000-4000-8000-000000000001", conversation_id=conversation.pk, attempt=1,
        model="gpt-4.1-mini", error_code="provider_error", error_message="The provider failed.",
    )
    return {
        "message_event": events.message_event(message),
        "turn_queued_event": events.turn_queued_event(turn),
        "turn_started_event": events.turn_started_event(turn, model_label="GPT-4.1 mini"),
        "text_delta_event": events.text_delta_event(cid, str(turn.id), "Your order"),
        "commentary_event": events.commentary_event(cid, str(turn.id), "Let me look that up."),
        "tool_started_event": events.tool_started_event(
            cid, str(turn.id), call_id="call_1", name="lookup_order", activity="Looking up your order..."
        ),
        "tool_finished_event": events.tool_finished_event(
            cid, str(turn.id), call_id="call_1", name="lookup_order", ok=True
        ),
        "turn_completed_event": events.turn_completed_event(turn, message_seq=None),
        "turn_failed_event": events.turn_failed_event(turn),
        "turn_cancelled_event": events.turn_cancelled_event(turn),
        "conversation_updated_event": events.conversation_updated_event(conversation),
    }


def test_the_samples_cover_every_event_builder(default_agent):
    builders = {name for name, fn in inspect.getmembers(events, inspect.isfunction)
                if name.endswith("_event") and fn.__module__ == events.__name__}
    conversation, message = _conversation_with_a_message()
    assert builders == set(samples(conversation, message))


async def _send_everything(conversation: Conversation, message: Any) -> None:
    """Every group message type, as the engine and the widget consumer send them."""
    layer = get_channel_layer()
    group = events.group_name(conversation.pk)
    for event in samples(conversation, message).values():
        await layer.group_send(group, {"type": events.CHANNEL_MESSAGE_TYPE, "event": event})
    for role in ("visitor", "staff"):
        await layer.group_send(group, {
            "type": TYPING_MESSAGE_TYPE, "sender": "someone-else", "role": role, "name": "Ada", "active": True,
        })
    # Then one more event: a socket that survived all of the above relays it.
    marker = events.text_delta_event(str(conversation.pk), "00000000-0000-4000-8000-000000000002", "still here")
    await layer.group_send(group, {"type": events.CHANNEL_MESSAGE_TYPE, "event": marker})


def _staff_cookie(username: str) -> str:
    client = logged_in(make_staff(username, superuser=True))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.mark.parametrize("door", ["widget visitor", "widget staff"])
async def test_each_consumer_survives_every_event_type_and_keeps_relaying(door, default_agent):
    conversation, message = await db(_conversation_with_a_message)()
    if door == "widget visitor":
        client = WsClient(path_for(conversation))
        first = "caught_up"
    else:
        client = WsClient(f"/ws/conversations/{conversation.pk}/", cookie=await db(_staff_cookie)("wendy"))
        first = "caught_up"
    assert await client.connect()
    await client.until(of_type(first))

    await _send_everything(conversation, message)

    # Then the socket is still open and relays the event sent after all the others
    done = await client.until(lambda e: e.get("type") == "text.delta" and e.get("delta") == "still here")
    assert client.close_code is None, client.close_code
    received = [e["type"] for e in client.events]
    # and it behaved as its door should along the way
    if door == "widget visitor":
        # the customer sees staff typing, never its own role's
        assert [e["role"] for e in client.events if e["type"] == "typing"] == ["staff"]
        assert [e["seq"] for e in client.events if e["type"] == "message"] == [message.seq]
    else:
        # staff (the console's pages too) get the engine's events unchanged, and the
        # visitor's typing hints, never their own role's
        assert {"turn.queued", "turn.started", "tool.started", "tool.finished", "turn.completed",
                "turn.failed", "turn.cancelled", "conversation.updated"} <= set(received)
        assert [e["role"] for e in client.events if e["type"] == "typing"] == ["visitor"]
    assert done["conversation"] == str(conversation.pk)
    await client.close()


async def test_the_api_event_stream_relays_engine_events_skips_typing_and_ends_with_its_answer(
    default_agent, provider
):
    engine.bind()  # turns run on this test's loop
    conversation, message = await db(_conversation_with_a_message)()
    await Conversation.objects.filter(pk=conversation.pk).aupdate(ai_paused=False)
    answer = "Your order left this morning and arrives on Thursday."
    provider.queue(fp.text(answer, delay=0.3, delta_delay=0.05))
    headers = {"Authorization": f"Visitor {visitor_token_issue(conversation)}", "Accept": "text/event-stream"}
    response = await AsyncClient().post(f"/api/v1/conversations/{conversation.pk}/messages",
                                        {"text": "And the gift card?"}, content_type="application/json",
                                        headers=headers)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    chunks: list[str] = []
    sent = False
    async for chunk in response.streaming_content:
        chunks.append(chunk.decode())
        if not sent:  # the stream is open: now every kind of group message arrives
            sent = True
            await _send_everything(conversation, message)
    received = list(sse_events(iter("".join(chunks).splitlines())))

    # Then every engine event was relayed and no typing hint leaked into the stream
    types = [e.get("type") for e in received]
    assert None not in types and "typing" not in types, types
    assert {e["type"] for e in samples(conversation, message).values()} <= set(types)
    assert any(e.get("delta") == "still here" for e in received)
    # and the stream still ended with its own turn's stored answer
    assert types[-2:] == ["message", "turn.completed"] and received[-2]["message"]["text"] == answer


async def test_the_api_event_stream_rejoins_its_group_when_the_layer_loses_its_broker(default_agent, provider):
    engine.bind()
    conversation, message = await db(_conversation_with_a_message)()
    await Conversation.objects.filter(pk=conversation.pk).aupdate(ai_paused=False)
    provider.queue(fp.text("It arrives on Thursday.", delay=1.0, delta_delay=0.05))
    headers = {"Authorization": f"Visitor {visitor_token_issue(conversation)}", "Accept": "text/event-stream"}
    response = await AsyncClient().post(f"/api/v1/conversations/{conversation.pk}/messages",
                                        {"text": "When?"}, content_type="application/json", headers=headers)
    layer = get_channel_layer()
    if not hasattr(layer, "groups"):
        pytest.skip("emulates a broker restart by editing the in-memory layer's groups; "
                    "tests/scale/test_redis_loss.py restarts a real Redis")
    group = events.group_name(conversation.pk)
    chunks: list[str] = []
    lost = marked = False
    async for chunk in response.streaming_content:
        chunks.append(chunk.decode())
        if not lost:
            lost = True
            # Given a broker that restarted: it forgot the group, and the layer tells the
            # stream's channel so (as the Redis layers do)
            channels = list(layer.groups.get(group, {}))
            assert channels, "the stream joined its conversation's group"
            layer.groups.pop(group, None)
            for channel in channels:
                await layer.send(channel, {"type": "layer.lost"})
        elif not marked and layer.groups.get(group):
            # When a live event is published once the stream has handled the notice
            marked = True
            marker = events.text_delta_event(str(conversation.pk), "00000000-0000-4000-8000-000000000003", "rejoined")
            await layer.group_send(group, {"type": events.CHANNEL_MESSAGE_TYPE, "event": marker})
    received = list(sse_events(iter("".join(chunks).splitlines())))
    # Then the stream is in the group again and relays it, and still ends with its answer
    assert any(e.get("delta") == "rejoined" for e in received), [e.get("type") for e in received]
    assert [e.get("type") for e in received][-2:] == ["message", "turn.completed"]
