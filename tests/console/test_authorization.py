"""The console's authorisation matrix: each role x each staff action, via the test client.

The same decisions as the REST API's and the widget websocket's matrices, because all
three doors ask `conversations.authorization` (the services do, for actions that
write). Staff who may not see conversations get 404, as for a foreign id; staff who
may see it but not act get 403 and nothing changes; people who are not staff are sent
to the admin's login.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from conversations.authorization import playground_owner_id
from conversations.console.benchdata import conversation_long
from conversations.console.models import Replay
from conversations.models import Conversation, Message, StaffAction, Turn
from conversations.models.conversation import Channel
from conversations.permissions import AGENT, VIEWER
from conversations.services.conversations import conversation_create
from tests.console.conftest import logged_in, make_staff

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "not_staff", "staff_no_group", "viewer", "agent", "superuser"]
LOGIN = "login"


def _row(*statuses: Any) -> dict[str, Any]:
    return dict(zip(ROLES, statuses, strict=True))


#             anonymous not_staff no_group viewer agent superuser
ACT = _row(LOGIN, LOGIN, 404, 403, 302, 302)
READ = _row(LOGIN, LOGIN, 404, 200, 200, 200)
TRY = _row(LOGIN, LOGIN, 404, 403, 201, 201)
TRY_MESSAGE = _row(LOGIN, LOGIN, 404, 403, 201, 201)
REPLAY = _row(LOGIN, LOGIN, 404, 403, 302, 302)

# (name, method, path template, data, expected)
ACTIONS: list[tuple[str, str, str, Any, dict[str, Any]]] = [
    ("page", "GET", "/admin/conversations/conversation/{c}/change/", None, READ),
    ("turn_audit", "GET", "/admin/conversations/turn/{t}/change/", None, READ),
    ("reply", "POST", "/admin/conversations/conversation/{c}/act/reply/", {"text": "Hello"}, ACT),
    ("note", "POST", "/admin/conversations/conversation/{c}/act/note/", {"text": "VIP"}, ACT),
    ("retry", "POST", "/admin/conversations/conversation/{c}/act/retry/", {"turn": "{t}"}, ACT),
    ("take_over", "POST", "/admin/conversations/conversation/{c}/act/take-over/", {}, ACT),
    ("hand_back", "POST", "/admin/conversations/conversation/{c}/act/hand-back/", {}, ACT),
    ("resolve", "POST", "/admin/conversations/conversation/{c}/act/resolve/", {}, ACT),
    ("reopen", "POST", "/admin/conversations/conversation/{c}/act/reopen/", {}, ACT),
    ("export_json", "GET", "/admin/conversations/conversation/{c}/export.json", None, READ),
    ("export_txt", "GET", "/admin/conversations/conversation/{c}/export.txt", None, READ),
    ("replay", "POST", "/admin/conversations/turn/{t}/replay/", {"model": "gpt-4.1"}, REPLAY),
    ("try_start", "POST", "/admin/conversations/agent/{a}/try/", None, TRY),
    ("try_message", "POST", "/admin/conversations/agent/{a}/try/{p}/messages/", {"text": "hi"}, TRY_MESSAGE),
]
BULK = {
    "retry_failed_turns": _row(LOGIN, LOGIN, "unchanged", "unchanged", "changed", "changed"),
    "resolve_conversations": _row(LOGIN, LOGIN, "unchanged", "unchanged", "changed", "changed"),
}


@pytest.fixture
def world(default_agent: Any, groups: None) -> dict[str, Any]:
    conversation = conversation_long(agent=default_agent, items=12, fail_last=True)
    users = {
        "not_staff": get_user_model().objects.create_user("customer", "c@example.com", "x"),
        "staff_no_group": make_staff("nobody"),
        "viewer": make_staff("vera", group=VIEWER),
        "agent": make_staff("sam", group=AGENT),
        "superuser": make_staff("root", superuser=True),
    }
    return {"conversation": conversation, "agent": default_agent, "users": users}


def _client(world: dict[str, Any], role: str) -> Any:
    from django.test import Client

    return Client() if role == "anonymous" else logged_in(world["users"][role])


def _state(conversation: Conversation) -> tuple:
    fresh = Conversation.objects.get(pk=conversation.pk)
    return (
        Message.objects.count(), Turn.objects.count(), StaffAction.objects.count(), Replay.objects.count(),
        Conversation.objects.count(), fresh.status, fresh.ai_paused,
    )


def _playground(world: dict[str, Any], role: str) -> str:
    """A try-it chat of this user's own (anonymous callers get somebody's)."""
    owner = world["users"].get(role) or world["users"]["agent"]
    chat = conversation_create(
        agent=world["agent"], channel=Channel.PLAYGROUND, customer_id=playground_owner_id(owner),
    )
    return str(chat.pk)


def _status(response: Any) -> Any:
    if response.status_code == 302 and response["Location"].startswith("/admin/login/"):
        return LOGIN
    return response.status_code


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "path", "data", "expected"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_each_role_may_take_only_the_console_actions_its_permissions_allow(
    world, name, method, path, data, expected, role, offline
):
    # Given a conversation with a failed turn (paused, for hand back; resolved, to reopen)
    conversation = world["conversation"]
    if name == "hand_back":
        Conversation.objects.filter(pk=conversation.pk).update(ai_paused=True)
    if name == "reopen":
        Conversation.objects.filter(pk=conversation.pk).update(status="resolved")
    turn = Turn.objects.get(conversation=conversation, status="failed")
    fill = {"c": conversation.pk, "t": turn.pk, "a": world["agent"].pk}
    if name == "try_message":
        fill["p"] = _playground(world, role)
    url = path.format(**fill)
    client = _client(world, role)
    before = _state(conversation)
    # When the role takes the action
    if method == "GET":
        response = client.get(url)
    elif name.startswith("try_"):
        response = client.post(url, json.dumps(data or {}), content_type="application/json")
    else:
        response = client.post(url, {k: v.format(**fill) for k, v in (data or {}).items()})
    # Then the answer is the matrix's, and a refusal changes nothing
    assert _status(response) == expected[role], getattr(response, "content", b"")[:300]
    if expected[role] in (LOGIN, 403, 404):
        assert _state(conversation) == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(BULK))
def test_bulk_actions_run_only_for_roles_allowed_to_take_them(world, action, role, offline):
    conversation = world["conversation"]
    before = _state(conversation)
    response = _client(world, role).post("/admin/conversations/conversation/", {
        "action": action, "_selected_action": [str(conversation.pk)],
    })
    if BULK[action][role] == LOGIN:
        assert _status(response) == LOGIN
        return
    changed = "changed" if _state(conversation) != before else "unchanged"
    assert changed == BULK[action][role]
