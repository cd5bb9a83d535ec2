"""The services refuse what the acting principal may not do, whichever door calls them.

Each role calls each service that acts on a conversation directly, as a door would:
the services themselves decide, so a door that forgets a check (the widget socket once
let a read-only "Support viewer" reply and pause the AI) still cannot let it through.
"allowed" means the call got past authorisation (it may still be refused for another
reason, e.g. a Conflict); 404 means the principal may not see the conversation, 403
that it may see it but not do this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from conversations.api.keys import api_key_create
from conversations.api.models import ApiClient, ClientConversation, Scope
from conversations.authorization import Action, Principal, authorize
from conversations.console.benchdata import conversation_long
from conversations.console.models import Replay
from conversations.console.replay import replay_start
from conversations.errors import NotFound, PermissionDenied, PlatformError
from conversations.models import Conversation, Message, StaffAction, Turn
from conversations.permissions import AGENT, VIEWER, support_groups_sync
from conversations.services.conversations import (
    conversation_hand_back,
    conversation_handoff,
    conversation_set_status,
    conversation_take_over,
)
from conversations.services.messages import message_post, note_add, staff_reply_post
from conversations.services.ratings import rating_add
from conversations.services.turns import turn_cancel, turn_retry

pytestmark = pytest.mark.django_db

ROLES = [
    "visitor", "other_visitor", "write_key", "read_key", "other_key",
    "viewer", "agent", "superuser", "staff_no_group",
]
OK, FORBIDDEN, NOT_FOUND = "allowed", 403, 404


def _row(*outcomes: Any) -> dict[str, Any]:
    return dict(zip(ROLES, outcomes, strict=True))


#                 visitor other_v write_key read_key other_key viewer agent superuser no_group
CUSTOMER = _row(OK, NOT_FOUND, OK, FORBIDDEN, NOT_FOUND, FORBIDDEN, OK, OK, NOT_FOUND)
STAFF_ONLY = _row(FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN, OK, OK, NOT_FOUND)
MANAGE = _row(FORBIDDEN, NOT_FOUND, OK, FORBIDDEN, NOT_FOUND, FORBIDDEN, OK, OK, NOT_FOUND)
# Speaking as the customer: not a support agent's job (they reply as staff).
POST = _row(OK, NOT_FOUND, OK, FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, OK, NOT_FOUND)
# Reading the whole transcript (notes, raw tool output): staff who may read.
EXPORT = _row(FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, NOT_FOUND, OK, OK, OK, NOT_FOUND)
# Rating the conversation (CSAT): its customer, or a write key on the customer's behalf;
# no staff role, not even a superuser.
RATE = _row(OK, NOT_FOUND, OK, FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND)


def _failed_turn(conversation: Conversation) -> Turn:
    return Turn.objects.get(conversation=conversation, status="failed")


SERVICES: dict[str, tuple[Callable[[Conversation, Any], Any], dict[str, Any]]] = {
    "post": (lambda c, actor: message_post(conversation=c, text="Hello?", actor=actor), POST),
    "retry": (lambda c, actor: turn_retry(turn=_failed_turn(c), actor=actor), CUSTOMER),
    "cancel": (lambda c, actor: turn_cancel(turn=_failed_turn(c), actor=actor), CUSTOMER),
    "handoff": (lambda c, actor: conversation_handoff(conversation=c, reason="why", actor=actor), CUSTOMER),
    "reply": (lambda c, actor: staff_reply_post(conversation=c, actor=actor, text="Hi"), STAFF_ONLY),
    "note": (lambda c, actor: note_add(conversation=c, actor=actor, text="VIP"), STAFF_ONLY),
    "take_over": (lambda c, actor: conversation_take_over(conversation=c, actor=actor), STAFF_ONLY),
    "hand_back": (lambda c, actor: conversation_hand_back(conversation=c, actor=actor), MANAGE),
    "resolve": (lambda c, actor: conversation_set_status(conversation=c, status="resolved", actor=actor), MANAGE),
    "reopen": (lambda c, actor: conversation_set_status(conversation=c, status="open", actor=actor), MANAGE),
    # Past authorisation the open conversation's rating is a Conflict (not resolved).
    "rate": (lambda c, actor: rating_add(conversation=c, actor=actor, score=4), RATE),
    "replay": (lambda c, actor: replay_start(turn=_failed_turn(c), actor=actor, model="gpt-4.1"), STAFF_ONLY),
    # No service behind these (the console reads, or opens a panel): the layer itself.
    "export": (lambda c, actor: authorize(actor, Action.EXPORT, c), EXPORT),
    "try_agent": (lambda c, actor: authorize(actor, Action.TRY_AGENT), _row(
        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, OK, FORBIDDEN,
    )),
}


def _staff(name: str, *, group: str | None = None, superuser: bool = False) -> Any:
    user = get_user_model().objects.create(username=name, is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def _key(client: ApiClient, scopes: list[str]) -> Principal:
    key, _raw = api_key_create(client=client, name="-".join(scopes), scopes=scopes)
    return Principal(kind="key", key=key)


@pytest.fixture
def world(default_agent: Any) -> dict[str, Any]:
    support_groups_sync()
    conversation = conversation_long(agent=default_agent, items=12, fail_last=True)
    other = conversation_long(agent=default_agent, items=2, fail_last=False)
    acme, globex = ApiClient.objects.create(name="acme"), ApiClient.objects.create(name="globex")
    ClientConversation.objects.create(conversation=conversation, client=acme)
    actors = {
        "visitor": Principal(kind="visitor", conversation_id=str(conversation.pk)),
        "other_visitor": Principal(kind="visitor", conversation_id=str(other.pk)),
        "write_key": _key(acme, [Scope.READ, Scope.WRITE]),
        "read_key": _key(acme, [Scope.READ]),
        "other_key": _key(globex, [Scope.READ, Scope.WRITE]),
        "viewer": _staff("vera", group=VIEWER),
        "agent": _staff("sam", group=AGENT),
        "superuser": _staff("root", superuser=True),
        "staff_no_group": _staff("nobody"),
    }
    return {"conversation": conversation, "actors": actors}


def _state(conversation: Conversation) -> tuple:
    fresh = Conversation.objects.get(pk=conversation.pk)
    return (
        list(Message.objects.filter(conversation=conversation).values_list("seq", "kind")),
        list(Turn.objects.filter(conversation=conversation).values_list("id", "status")),
        StaffAction.objects.count(), Replay.objects.count(), fresh.status, fresh.ai_paused,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("service", list(SERVICES))
def test_each_service_decides_for_each_role(world, service, role):
    # Given a conversation with a failed turn, and one acting principal
    conversation = world["conversation"]
    call, expected = SERVICES[service]
    before = _state(conversation)
    # When the principal calls the service
    try:
        call(conversation, world["actors"][role])
        outcome: Any = OK
    except NotFound:
        outcome = NOT_FOUND
    except PermissionDenied:
        outcome = FORBIDDEN
    except PlatformError:
        outcome = OK  # past authorisation, refused for another reason (e.g. a Conflict)
    # Then it is allowed or refused as the matrix says, and a refusal writes nothing
    assert outcome == expected[role]
    if outcome != OK:
        assert _state(conversation) == before


def test_a_staff_action_records_the_staff_member_not_the_principal(world):
    conversation, sam = world["conversation"], world["actors"]["agent"]
    staff_reply_post(conversation=conversation, actor=Principal(kind="staff", user=sam), text="Hi")
    assert StaffAction.objects.get(action="reply").actor == sam
    assert Message.objects.get(conversation=conversation, kind="staff", text="Hi").author == sam


def test_the_platform_itself_is_never_refused(world):
    # The engine, its tools and budgets act with no principal (actor=None).
    conversation = world["conversation"]
    conversation_handoff(conversation=conversation, reason="budget reached")
    assert Conversation.objects.get(pk=conversation.pk).ai_paused is True
