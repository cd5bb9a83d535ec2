"""The widget websocket's authorisation matrix: each role x each acting frame, through
the project's real ASGI stack (origin check, session auth, routing).

A read-only "Support viewer" may watch a conversation live from the platform's own
origin, but a `message` frame from them used to store a staff reply and pause the AI,
although the console refuses them the same action (issue 14, finding 1). Now every
frame is decided by the services, and a refusal is an `error` event that changes
nothing. Roles that may not see the conversation never get past the handshake (4404).
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from conversations.access import visitor_token_issue
from conversations.agent.engine import engine
from conversations.api.keys import api_key_create
from conversations.api.models import ApiClient, Scope
from conversations.console.benchdata import conversation_long
from conversations.models import Conversation, CsatRating, Message, StaffAction, Turn
from conversations.permissions import AGENT, VIEWER, support_groups_sync
from conversations.services.conversations import conversation_set_status
from conversations.widget import protocol
from tests.realtime.wsclient import WsClient, of_type

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async

ACK, FORBIDDEN, NOT_ALLOWED = "ack", "forbidden", "not_allowed"
# What each frame gets, per role that may open the socket.
EXPECTED: dict[str, dict[str, str]] = {
    "visitor": {"message": ACK, "retry": ACK, "handoff": ACK, "rating": ACK},
    "viewer": {"message": FORBIDDEN, "retry": FORBIDDEN, "handoff": NOT_ALLOWED, "rating": FORBIDDEN},
    # Only the customer rates: no staff role may rate on their behalf.
    "agent": {"message": ACK, "retry": ACK, "handoff": NOT_ALLOWED, "rating": FORBIDDEN},
    "superuser": {"message": ACK, "retry": ACK, "handoff": NOT_ALLOWED, "rating": FORBIDDEN},
}
REFUSED_AT_CONNECT = ["other_visitor", "staff_no_group", "api_key_as_token", "anonymous"]


@pytest.fixture(autouse=True)
async def _turns_finish():
    yield
    await engine.wait_idle()


@pytest.fixture
def world(default_agent: Any, offline: None) -> dict[str, Any]:
    support_groups_sync()
    conversation = conversation_long(agent=default_agent, items=12, fail_last=True)
    other = conversation_long(agent=default_agent, items=2, fail_last=False)
    User = get_user_model()

    def session(name: str, *, group: str | None = None, superuser: bool = False) -> str:
        user = User.objects.create(username=name, is_staff=True, is_superuser=superuser)
        if group:
            user.groups.add(Group.objects.get(name=group))
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}"

    _key, raw_key = api_key_create(client=ApiClient.objects.create(name="acme"), name="k", scopes=[Scope.READ])
    base = f"/ws/conversations/{conversation.pk}/"
    return {
        "conversation": conversation,
        "clients": {
            "visitor": {"path": f"{base}?token={visitor_token_issue(conversation)}"},
            "other_visitor": {"path": f"{base}?token={visitor_token_issue(other)}"},
            "api_key_as_token": {"path": f"{base}?token={raw_key}"},
            "anonymous": {"path": base},
            "viewer": {"path": base, "cookie": session("vera", group=VIEWER)},
            "agent": {"path": base, "cookie": session("sam", group=AGENT)},
            "superuser": {"path": base, "cookie": session("root", superuser=True)},
            "staff_no_group": {"path": base, "cookie": session("nobody")},
        },
    }


def _frame(kind: str, conversation: Conversation) -> dict[str, Any]:
    if kind == "message":
        return {"type": "message", "text": "Sorry for the wait, I am on it.", "client_id": "m1"}
    if kind == "retry":
        return {"type": "retry", "turn": str(Turn.objects.get(conversation=conversation, status="failed").pk)}
    if kind == "rating":
        return {"type": "rating", "score": 4, "comment": "Quick and clear."}
    return {"type": kind}


def _state(conversation: Conversation) -> tuple:
    fresh = Conversation.objects.get(pk=conversation.pk)
    return (
        Message.objects.filter(conversation=conversation).count(),
        Turn.objects.filter(conversation=conversation).count(),
        StaffAction.objects.count(), fresh.status, fresh.ai_paused, CsatRating.objects.count(),
    )


@pytest.mark.parametrize("frame", ["message", "retry", "handoff", "rating"])
@pytest.mark.parametrize("role", list(EXPECTED))
async def test_each_role_may_send_only_the_frames_its_permissions_allow(world, role, frame):
    # Given a connection of this role to a conversation with a failed turn (resolved,
    # for a rating)
    conversation = world["conversation"]
    if frame == "rating":
        await db(conversation_set_status)(conversation=conversation, status="resolved", actor=None)
    client = WsClient(**world["clients"][role])
    assert await client.connect()
    await client.until(of_type("caught_up"))
    before = await db(_state)(conversation)
    # When it sends the frame
    await client.send(await db(_frame)(frame, conversation))
    answer = await client.until(lambda e: e["type"] in ("ack", "error") and e.get("frame") == frame)
    # Then it is acted on, or refused with an error event that changes nothing
    expected = EXPECTED[role][frame]
    if expected == ACK:
        assert answer["type"] == "ack", answer
    else:
        assert answer["type"] == "error" and answer["code"] == expected, answer
        await client.quiet(0.2)
        assert await db(_state)(conversation) == before
    await client.close()


@pytest.mark.parametrize("role", ["viewer", "agent", "superuser"])
async def test_a_staff_typing_hint_reaches_the_customer_only_from_staff_who_may_reply(world, role):
    # Given the customer's widget and a staff connection of this role
    visitor = WsClient(**world["clients"]["visitor"])
    assert await visitor.connect()
    await visitor.until(of_type("caught_up"))
    staff = WsClient(**world["clients"][role])
    assert await staff.connect()
    await staff.until(of_type("caught_up"))
    # When the staff member types
    await staff.send({"type": "typing"})
    # Then the customer sees it, unless the role may not reply (a viewer only reads)
    if EXPECTED[role]["message"] == ACK:
        typing = await visitor.until(of_type("typing"))
        assert typing["role"] == "staff" and typing["active"] is True
    else:
        error = await staff.until(of_type("error", frame="typing"))
        assert error["code"] == "forbidden"
        assert not [e for e in await visitor.quiet(0.3) if e["type"] == "typing"]
    await staff.close()
    await visitor.close()


@pytest.mark.parametrize("role", REFUSED_AT_CONNECT)
async def test_roles_that_may_not_see_the_conversation_are_closed_with_4404(world, role):
    client = WsClient(**world["clients"][role])
    assert await client.connect()
    assert await client.closed() == protocol.CLOSE_NOT_FOUND
    assert not any(e["type"] == "ready" for e in client.events)


async def test_a_support_viewer_cannot_reply_or_pause_the_ai_over_the_widget_socket(world):
    # Issue 14, finding 1: the viewer's reply was stored and the AI paused.
    conversation = world["conversation"]
    viewer = WsClient(**world["clients"]["viewer"])
    assert await viewer.connect()
    assert (await viewer.until(of_type("ready")))["role"] == "staff"
    await viewer.send({"type": "message", "text": "I am only supposed to read.", "client_id": "v1"})
    error = await viewer.until(of_type("error"))
    assert error["code"] == "forbidden" and error["client_id"] == "v1"
    stored = await db(Conversation.objects.get)(pk=conversation.pk)
    assert stored.ai_paused is False
    assert not await db(Message.objects.filter(conversation=conversation, kind="staff", client_id="v1").exists)()
    await viewer.close()


async def test_a_permission_withdrawn_counts_from_the_next_frame_not_the_next_connection(world):
    # Given a Support agent connected to the conversation
    conversation = world["conversation"]
    agent = WsClient(**world["clients"]["agent"])
    assert await agent.connect()
    await agent.until(of_type("caught_up"))
    # When they leave the group while the socket stays open
    await db(lambda: get_user_model().objects.get(username="sam").groups.clear())()
    await agent.send({"type": "message", "text": "Still here?", "client_id": "late"})
    # Then their next reply is refused and nothing is stored
    error = await agent.until(of_type("error"))
    assert error["code"] == "not_found", error  # they may no longer even see it
    assert not await db(Message.objects.filter(conversation=conversation, client_id="late").exists)()
    await agent.close()
