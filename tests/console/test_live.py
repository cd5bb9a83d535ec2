"""The console's live view on the conversation websocket (staff role): a staff member
watching a conversation sees the answer stream, and a staff reply reaches the customer's
channel group through the same service."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from conversations.agent.events import group_name
from conversations.models import Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from support.asgi import application
from tests.conftest import await_for
from tests.console.conftest import act_url, logged_in, make_staff
from tests.fake_provider import text

pytestmark = pytest.mark.django_db(transaction=True)


async def _socket(conversation_id, client=None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/conversations/{conversation_id}/", headers=headers)


async def _ready(socket: WebsocketCommunicator) -> dict:
    """The `ready` event, after which the catch-up (nothing stored yet) ends with `caught_up`."""
    ready = await socket.receive_json_from()
    assert (await socket.receive_json_from())["type"] == "caught_up"
    return ready


async def _refused(socket: WebsocketCommunicator) -> bool:
    """True if the socket is refused as the console's pages see it: `not_found`, then 4404."""
    connected, _ = await socket.connect()
    if not connected:
        return True
    error = await socket.receive_json_from()
    closed = await socket.receive_output(timeout=5)
    return error["code"] == "not_found" and closed == {"type": "websocket.close", "code": 4404}


async def _events_until(socket: WebsocketCommunicator, kind: str, limit: int = 200) -> list[dict]:
    events = []
    for _ in range(limit):
        event = await socket.receive_json_from(timeout=10)
        events.append(event)
        if event["type"] == kind:
            return events
    raise AssertionError(f"no {kind} event in {events}")


async def test_a_staff_member_watching_sees_the_answer_stream(live_engine, default_agent, provider, groups):
    staff = await sync_to_async(make_staff)("watcher", group="Support viewer")
    client = await sync_to_async(logged_in)(staff)
    conversation = await sync_to_async(conversation_create)(channel="widget")
    socket = await _socket(conversation.pk, client)
    connected, _ = await socket.connect()
    assert connected
    ready = await _ready(socket)
    assert ready["type"] == "ready" and ready["conversation"] == str(conversation.pk) and ready["last_seq"] == 0

    provider.queue(text("Your order is on its way, it left our warehouse this morning.", delta_delay=0.02))
    await sync_to_async(message_post)(conversation=conversation, text="Where is my order?")
    events = await _events_until(socket, "turn.completed")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message" and events[0]["message"]["kind"] == "user"
    deltas = [e for e in events if e["type"] == "text.delta"]
    assert len(deltas) >= 2 and "".join(e["delta"] for e in deltas).startswith("Your order is on its way")
    answer = next(e for e in events if e["type"] == "message" and e["message"]["kind"] == "assistant")
    assert kinds.index("text.delta") < events.index(answer) and answer["seq"] == 2
    await socket.disconnect()


async def test_a_staff_reply_reaches_the_customers_channel_and_pauses_the_ai(live_engine, default_agent, offline, groups):
    staff = await sync_to_async(make_staff)("replier", group="Support agent")
    client = await sync_to_async(logged_in)(staff)
    conversation = await sync_to_async(conversation_create)(channel="widget")
    # The customer's widget listens on the conversation's group; so does this channel.
    layer = get_channel_layer()
    customer = await layer.new_channel()
    await layer.group_add(group_name(conversation.pk), customer)

    response = await sync_to_async(client.post)(act_url(conversation, "reply"), {"text": "Hi! Sam from support here."})
    assert response.status_code == 302
    received = []
    while not any(e.get("type") == "message" for e in received):
        received.append((await layer.receive(customer))["event"])
    message = next(e for e in received if e["type"] == "message")["message"]
    assert message["kind"] == "staff" and message["text"] == "Hi! Sam from support here."
    assert message["metadata"]["author_name"] == "replier"

    posted = await sync_to_async(message_post)(conversation=conversation, text="Great, thanks")
    assert posted.turn is None  # the AI stays paused until handed back
    await sync_to_async(client.post)(act_url(conversation, "hand-back"))
    turn = await sync_to_async(Turn.objects.get)(user_message=posted.message)
    finished = await await_for(lambda: sync_to_async(lambda: (t := Turn.objects.get(pk=turn.pk)).is_finished and t)())
    assert finished.status == "completed"


async def test_the_staff_socket_refuses_visitors_and_staff_without_access(default_agent, groups):
    conversation = await sync_to_async(conversation_create)(channel="widget")
    anonymous = await _socket(conversation.pk)
    assert await _refused(anonymous)
    stranger = await sync_to_async(logged_in)(await sync_to_async(make_staff)("stranger"))
    socket = await _socket(conversation.pk, stranger)
    assert await _refused(socket)
    viewer = await sync_to_async(logged_in)(await sync_to_async(make_staff)("looker", group="Support viewer"))
    socket = await _socket("00000000-0000-0000-0000-000000000000", viewer)
    assert await _refused(socket)


async def test_the_try_it_panel_streams_a_playground_chat(live_engine, default_agent, offline, groups):
    import json

    staff = await sync_to_async(make_staff)("tester", group="Support agent")
    client = await sync_to_async(logged_in)(staff)
    started = await sync_to_async(client.post)(f"/admin/conversations/agent/{default_agent.pk}/try/")
    assert started.status_code == 201
    data = started.json()
    assert "Offline demo model" in data["model_label"]
    socket = await _socket(data["conversation"], client)
    assert (await socket.connect())[0]
    await _ready(socket)

    url = f"/admin/conversations/agent/{default_agent.pk}/try/{data['conversation']}/messages/"
    posted = await sync_to_async(client.post)(url, json.dumps({"text": "How long does shipping take?"}), content_type="application/json")
    assert posted.status_code == 201 and posted.json()["turn"]["status"] == "queued"
    events = await _events_until(socket, "turn.completed")
    assert any(e["type"] == "text.delta" for e in events)
    answer = next(e for e in events if e["type"] == "message" and e["message"]["kind"] == "assistant")
    assert "shipping" in answer["message"]["text"].lower()

    items = await sync_to_async(client.get)(f"/admin/conversations/agent/{default_agent.pk}/try/{data['conversation']}/items/?after=1")
    # the offline agent searches the help articles, then answers
    assert [i["kind"] for i in items.json()["items"]] == ["function_call", "function_output", "assistant"]
    listing = (await sync_to_async(client.get)("/admin/conversations/conversation/")).content.decode()
    assert "try-it panel" not in listing  # playground chats stay out of the customer list
    playground = (await sync_to_async(client.get)("/admin/conversations/conversation/?channel=playground")).content.decode()
    assert "try-it panel" in playground
    await socket.disconnect()
