"""The conversation websocket through the project's real ASGI stack (origin check,
session auth, routing), with turns run by the engine on the test's loop."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from conversations.access import visitor_token_issue
from conversations.agent.engine import engine
from conversations.models import Conversation, Message, Turn
from conversations.models.message import MessageKind
from conversations.services.conversations import conversation_create
from conversations.services.items import item_append
from conversations.services.messages import note_add, staff_reply_post
from conversations.widget import protocol
from tests import fake_provider as fp
from tests.realtime.wsclient import WsClient, of_type

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


@pytest.fixture(autouse=True)
async def _turns_finish():
    """Let turns a test started finish before the database is flushed."""
    yield
    await engine.wait_idle()


@pytest.fixture
def conversation(default_agent: Any) -> Conversation:
    return conversation_create(channel="widget")


def pause_ai(conversation: Conversation) -> None:
    """Messages are stored without queuing turns (as when a person has taken over)."""
    Conversation.objects.filter(pk=conversation.pk).update(ai_paused=True)


def path_for(conversation: Conversation, token: str | None = None, after: int | None = None) -> str:
    token = visitor_token_issue(conversation) if token is None else token
    query = f"?token={token}" + (f"&after={after}" if after is not None else "")
    return f"/ws/conversations/{conversation.pk}/{query}"


async def open_client(path: str, **kwargs: Any) -> WsClient:
    client = WsClient(path, **kwargs)
    assert await client.connect()
    return client


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"]["kind"] for e in events if e["type"] == "message"]


# --- authorisation ----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["garbage token", "other visitor's token", "no token", "bad id"])
async def test_connections_without_a_valid_grant_close_with_4404(conversation, case):
    other = await db(conversation_create)(channel="widget")
    path = {
        "garbage token": path_for(conversation, token="not-a-token"),
        "other visitor's token": path_for(conversation, token=visitor_token_issue(other)),
        "no token": f"/ws/conversations/{conversation.pk}/",
        "bad id": f"/ws/conversations/not-a-uuid/?token={visitor_token_issue(conversation)}",
    }[case]
    client = await open_client(path)
    assert await client.closed() == protocol.CLOSE_NOT_FOUND
    assert client.events == [protocol.error_event("not_found", "Conversation not found.")]


async def test_a_foreign_origin_is_refused_at_the_handshake(conversation):
    client = WsClient(path_for(conversation), origin=b"http://evil.example")
    assert not await client.connect()


async def test_an_embedding_site_listed_in_widget_origins_may_connect(conversation, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "WIDGET_ORIGINS": [".shop.example"]}
    client = await open_client(path_for(conversation), origin=b"https://www.shop.example")
    ready = await client.until(of_type("ready"))
    assert ready["role"] == "visitor"
    await client.close()


# --- catch-up ------------------------------------------------------------------------------


async def test_connect_sends_state_then_every_customer_visible_item_after_the_given_seq(
    conversation, admin_user, offline
):
    visitor = await open_client(path_for(conversation))
    await visitor.until(of_type("caught_up"))
    await visitor.send({"type": "message", "text": "Where is order 1001? ada@example.com", "client_id": "c1"})
    await visitor.until(of_type("turn.completed"))
    await db(note_add)(conversation=conversation, actor=admin_user, text="internal: VIP customer")
    await db(staff_reply_post)(conversation=conversation, actor=admin_user, text="Hi, Grace here.")
    await visitor.close()

    fresh = await open_client(path_for(conversation, after=0))
    ready = await fresh.until(of_type("ready"))
    assert ready["last_seq"] == 6 and ready["model"]["offline"] is True
    assert "Offline demo model" in ready["model"]["label"]
    done = await fresh.until(of_type("caught_up"))
    history = [e for e in fresh.events if e["type"] == "message"]
    assert [e["seq"] for e in history] == [1, 2, 3, 4, 6]  # 5 is the note
    assert kinds(history) == ["user", "function_call", "function_output", "assistant", "staff"]
    assert done["last_seq"] == 6
    call, output, answer = history[1]["message"], history[2]["message"], history[3]
    assert call["activity"] == "Looking up your order..." and "1001" in call["arguments"]
    assert output["text"] == "" and output["ok"] is True  # no raw tool payload for customers
    assert "Offline demo model" in answer["model_label"]
    assert history[4]["message"]["metadata"] == {"author_name": "admin"}
    await fresh.close()

    resumed = await open_client(path_for(conversation, after=3))
    await resumed.until(of_type("caught_up"))
    assert [e["seq"] for e in resumed.events if e["type"] == "message"] == [4, 6]
    await resumed.send({"type": "resume", "after": 5})
    await resumed.until(of_type("caught_up", last_seq=6))
    assert [e["seq"] for e in resumed.events if e["type"] == "message"] == [4, 6, 6]
    await resumed.close()


async def test_a_lost_hint_is_filled_from_the_database_in_seq_order(conversation, admin_user):
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))

    def store_silently() -> None:  # as if the channel layer had dropped the event
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
            item_append(conversation=locked, kind=MessageKind.STAFF, text="first", author=admin_user)

    await db(store_silently)()
    await db(staff_reply_post)(conversation=conversation, actor=admin_user, text="second")
    await client.until(lambda e: e.get("seq") == 2)
    assert [(e["seq"], e["message"]["text"]) for e in client.events if e["type"] == "message"] == [
        (1, "first"), (2, "second"),
    ]
    later = await client.quiet()
    assert [e for e in later if e["type"] == "message"] == []  # seq 2's live event is not sent twice
    await client.close()


# --- live events -----------------------------------------------------------------------------


async def test_a_message_frame_posts_and_the_streamed_turn_is_relayed(conversation, provider):
    provider.queue(fp.text("Your parcel is on its way to you today.", delta_delay=0.05))
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))
    await client.send({"type": "message", "text": "Where is my parcel?", "client_id": "abc"})
    ack = await client.until(of_type("ack", frame="message"))
    assert ack == {"type": "ack", "frame": "message", "client_id": "abc", "seq": 1, "created": True}
    started = await client.until(of_type("turn.started"))
    # the site's default provenance ("AI assistant") keeps the model's name from visitors
    assert "model_label" not in started and "model" not in started
    answer = await client.until(lambda e: e.get("type") == "message" and e["message"]["kind"] == "assistant")
    deltas = [e["delta"] for e in client.events if e["type"] == "text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == answer["message"]["text"]
    assert "model_label" not in answer and answer["turn"] == started["turn"]
    await client.until(of_type("turn.completed", turn=started["turn"]))
    user_messages = [e for e in client.events if e["type"] == "message" and e["message"]["kind"] == "user"]
    assert len(user_messages) == 1 and user_messages[0]["message"]["client_id"] == "abc"

    # Sending the same client_id again (a resend after a reconnect) stores nothing new.
    await client.send({"type": "message", "text": "Where is my parcel?", "client_id": "abc"})
    again = await client.until(of_type("ack", frame="message"))
    assert again["seq"] == 1 and again["created"] is False
    assert await db(Message.objects.filter(conversation=conversation).count)() == 2
    await client.close()


async def test_a_failed_turn_is_reported_without_provider_details_and_can_be_retried(conversation, provider):
    provider.queue(fp.status(500, "upstream exploded: secret detail"), fp.status(500, "again"))
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))
    await client.send({"type": "message", "text": "Hello?", "client_id": "x1"})
    failed = await client.until(of_type("turn.failed"))
    assert failed["retryable"] is True and failed["error_code"] == "provider_error"
    assert "error" not in failed and "secret" not in json.dumps(client.events)

    provider.queue(fp.text("Sorry about that, hello!"))
    await client.send({"type": "retry", "turn": failed["turn"]})
    ack = await client.until(of_type("ack", frame="retry"))
    assert ack["turn"] == failed["turn"] and ack["new_turn"] != failed["turn"]
    await client.until(of_type("turn.completed", turn=ack["new_turn"]))
    retried = await db(Turn.objects.get)(pk=ack["new_turn"])
    assert retried.trigger == "customer_retry" and retried.attempt == 2

    await client.send({"type": "retry", "turn": failed["turn"]})
    error = await client.until(of_type("error"))
    assert error["code"] == "not_latest_attempt" and error["turn"] == failed["turn"]
    await client.close()


async def test_handoff_frame_puts_the_conversation_in_the_staff_queue(conversation):
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))
    await client.send({"type": "handoff"})
    await client.until(of_type("ack", frame="handoff"))
    updated = await client.until(of_type("conversation.updated"))
    assert updated["status"] == "waiting_on_staff" and updated["ai_paused"] is True
    await client.close()


async def test_staff_session_replies_live_and_typing_reaches_the_other_side(conversation, admin_client):
    cookie = f"sessionid={admin_client.cookies['sessionid'].value}"
    visitor = await open_client(path_for(conversation))
    await visitor.until(of_type("caught_up"))
    staff = await open_client(f"/ws/conversations/{conversation.pk}/", cookie=cookie)
    assert (await staff.until(of_type("ready")))["role"] == "staff"

    await staff.send({"type": "typing"})
    typing = await visitor.until(of_type("typing"))
    assert typing["role"] == "staff" and typing["active"] is True
    await visitor.send({"type": "typing"})
    assert (await staff.until(of_type("typing")))["role"] == "visitor"

    await staff.send({"type": "message", "text": "Hello, a person here.", "client_id": "s1"})
    reply = await visitor.until(of_type("message"))
    assert reply["message"]["kind"] == "staff" and reply["message"]["text"] == "Hello, a person here."
    stored = await db(Conversation.objects.get)(pk=conversation.pk)
    assert stored.ai_paused is True
    await staff.close()
    await visitor.close()


async def test_a_staff_session_is_not_honoured_from_an_embedding_site(conversation, admin_client, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "WIDGET_ORIGINS": ["shop.example"]}
    cookie = f"sessionid={admin_client.cookies['sessionid'].value}"
    client = await open_client(f"/ws/conversations/{conversation.pk}/", cookie=cookie, origin=b"https://shop.example")
    assert await client.closed() == protocol.CLOSE_NOT_FOUND


# --- bad frames ------------------------------------------------------------------------------


async def test_malformed_and_oversize_frames_get_errors_and_lose_nothing(conversation, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "MAX_MESSAGE_CHARS": 100}
    await db(pause_ai)(conversation)
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))
    cases = [
        ("{not json", "malformed"),
        ("[1, 2]", "malformed"),
        (json.dumps({"type": "launch_missiles"}), "unknown_type"),
        ("x" * (protocol.max_frame_chars(100) + 1), "too_large"),
        (json.dumps({"type": "message", "text": "y" * 101, "client_id": "big"}), "too_large"),
        (json.dumps({"type": "message", "text": "   ", "client_id": "blank"}), "invalid"),
        (json.dumps({"type": "message", "text": 5}), "invalid"),
        (json.dumps({"type": "resume", "after": -1}), "invalid"),
        (json.dumps({"type": "retry", "turn": "nope"}), "not_found"),
    ]
    for frame, code in cases:
        await client.send(frame)
        error = await client.until(of_type("error"))
        assert error["code"] == code, (frame[:40], error)
    await client.comm.send_to(bytes_data=b"\x00\x01")
    assert (await client.until(of_type("error")))["code"] == "malformed"
    big = [e for e in client.events if e["type"] == "error" and e.get("client_id") == "big"]
    assert big and big[0]["frame"] == "message"  # the widget can mark that message unsent

    await client.send({"type": "message", "text": "still here", "client_id": "ok"})
    assert (await client.until(of_type("ack")))["seq"] == 1
    assert await db(Message.objects.filter(conversation=conversation).count)() == 1
    await client.close()


async def test_floods_are_rate_limited_then_closed_and_the_server_keeps_serving(conversation):
    await db(pause_ai)(conversation)
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))
    await client.send({"type": "message", "text": "before the flood", "client_id": "a"})
    await client.until(of_type("ack"))
    for _ in range(protocol.FRAME_BURST + 5):
        await client.send({"type": "typing", "active": False})
    await client.until(of_type("error", code="rate_limited"))
    for _ in range(protocol.REJECTED_BEFORE_CLOSE):
        await client.send({"type": "typing", "active": False})
    assert await client.closed() == protocol.CLOSE_TOO_MANY_FRAMES

    again = await open_client(path_for(conversation))
    await again.until(of_type("caught_up"))
    assert [e["message"]["text"] for e in again.events if e["type"] == "message"] == ["before the flood"]
    await again.close()


async def test_customer_messages_have_their_own_lower_rate_limit(conversation):
    await db(pause_ai)(conversation)
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))
    for index in range(protocol.MESSAGE_BURST + 1):
        await client.send({"type": "message", "text": f"hello {index}", "client_id": f"m{index}"})
    limited = await client.until(of_type("error", code="rate_limited"))
    assert limited["client_id"] == f"m{protocol.MESSAGE_BURST}"
    stored = await db(lambda: list(Message.objects.filter(conversation=conversation, kind="user").values_list("client_id", flat=True)))()
    assert stored == [f"m{i}" for i in range(protocol.MESSAGE_BURST)]
    await client.close()



# --- operations -------------------------------------------------------------------------


async def test_open_sockets_are_counted_in_metrics_and_refused_ones_are_not(conversation):
    from conversations.ops.metrics import render_metrics
    from tests.ops.helpers import parse_exposition, value

    def open_sockets() -> float:
        return value(parse_exposition(render_metrics()[0].decode()), "support_websockets_open")

    before = await db(open_sockets)()
    # Given a visitor's socket that is accepted, and one refused for a bad token
    client = await open_client(path_for(conversation))
    await client.until(lambda e: e["type"] == "caught_up")
    refused = WsClient(path_for(conversation, token="garbage"))
    assert await refused.connect()
    assert await refused.closed() == 4404
    # Then only the accepted one counts, until it closes
    assert await db(open_sockets)() == before + 1
    await client.comm.disconnect()
    assert await db(open_sockets)() == before
