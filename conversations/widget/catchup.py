"""Database reads for a websocket connection: who is connecting, the state sent on
connect, and the stored items after a seq (catch-up). Synchronous ORM code, run on the
engine's database threads by the consumer. Authorisation goes through
`conversations.access`, so the websocket grants exactly what the REST API grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from conversations.access import conversation_for_staff, conversation_for_visitor
from conversations.agent.events import MessageEvent, ReadyEvent, message_event
from conversations.agent.provider import is_offline, model_label
from conversations.authorization import Principal
from conversations.conf import platform_setting
from conversations.customer_view import customer_turn
from conversations.errors import NotFound
from conversations.models import Conversation, CsatRating, Message, Turn
from conversations.models.message import CUSTOMER_VISIBLE_KINDS, MessageKind
from conversations.models.staff_profile import staff_identity
from conversations.models.turn import TurnStatus
from conversations.presenters import turn_summary
from conversations.widget.presentation import read_seq, visitor_model

VISITOR = "visitor"
STAFF = "staff"
CATCHUP_BATCH = 200
RECENT_TURNS = 20


@dataclass(frozen=True)
class Viewer:
    role: str  # VISITOR or STAFF
    conversation: Conversation
    user: Any = None
    name: str = ""

    @property
    def principal(self) -> Principal:
        """Who acts when this connection sends a frame (the services decide what it may
        do). A staff member is read afresh (one query, database threads only), so a
        permission withdrawn or an account deactivated counts from the next frame, not
        from the next connection."""
        if self.role == STAFF:
            fresh = get_user_model().objects.filter(pk=self.user.pk).first()
            return Principal(kind="staff", user=fresh)
        return Principal(kind="visitor", conversation_id=str(self.conversation.pk))


def viewer_for(*, conversation_id: str, token: str, user: Any, staff_origin: bool) -> Viewer:
    """Authorise a connection: a visitor token for this conversation, else a staff
    session (only from the site's own origin, so a page embedding the widget can never
    ride a staff member's cookies). NotFound otherwise."""
    if token:
        return Viewer(VISITOR, conversation_for_visitor(token, conversation_id))
    if staff_origin and user is not None and getattr(user, "is_authenticated", False):
        conversation = conversation_for_staff(user, conversation_id)
        name = staff_identity(user)["name"]
        return Viewer(STAFF, conversation, user=user, name=name)
    raise NotFound("Conversation not found.")


def agent_identity(agent: Any) -> dict[str, str]:
    """The assistant as customers see it: `name` (its display name, else its name) and
    `avatar_url` (blank: the widget shows the name's first letter)."""
    return {"name": agent.display_name or agent.name, "avatar_url": agent.avatar_url}


def model_info(conversation: Conversation) -> dict[str, Any]:
    agent = conversation.agent
    model = agent.model or platform_setting("DEFAULT_MODEL")
    return {"name": model, "label": model_label(model, agent), "offline": is_offline(agent)}


def open_turns(conversation_id: Any, *, role: str) -> list[dict[str, Any]]:
    """The latest attempt for each recent customer message, when it is not completed:
    what is queued or running now, and what failed and may be retried."""
    recent = (
        Turn.objects.filter(conversation_id=conversation_id)
        .select_related("user_message")
        .order_by("-created_at")[:RECENT_TURNS]
    )
    seen: set[int] = set()
    shown = []
    for turn in recent:
        if turn.user_message_id in seen:
            continue
        seen.add(turn.user_message_id)
        if turn.status != TurnStatus.COMPLETED:
            summary = turn_summary(turn)
            shown.append(customer_turn(summary) if role == VISITOR else summary)
    return list(reversed(shown))


def connection_state(conversation_id: Any, *, role: str) -> ReadyEvent:
    """The `ready` event: the conversation as it is now (for a visitor, the model as the
    site's provenance setting shows it, see `conversations.widget.presentation`)."""
    conversation = Conversation.objects.select_related("agent").get(pk=conversation_id)
    model = model_info(conversation)
    return {
        "type": "ready",
        "conversation": str(conversation.pk),
        "role": role,
        "status": conversation.status,
        "ai_paused": conversation.ai_paused,
        "last_seq": conversation.next_seq - 1,
        "agent": agent_identity(conversation.agent),
        "model": visitor_model(model) if role == VISITOR else model,
        "read_seq": read_seq(conversation),
        "turns": open_turns(conversation.pk, role=role),
        "limits": {"max_message_chars": platform_setting("MAX_MESSAGE_CHARS")},
        "resolution": conversation.resolution,
        "rated": CsatRating.objects.filter(conversation_id=conversation.pk, resolution=conversation.resolution).exists(),
    }


def last_seq(conversation_id: Any) -> int:
    return Conversation.objects.values_list("next_seq", flat=True).get(pk=conversation_id) - 1


def message_events_after(
    conversation_id: Any, *, after: int, upto: int | None = None, role: str, limit: int = CATCHUP_BATCH
) -> list[MessageEvent]:
    """Message events for stored items with `after < seq <= upto`, in seq order, at most
    `limit`. Visitors get customer-visible kinds only (never notes). Assistant items
    carry `model_label`, the model that answered."""
    query = Message.objects.filter(conversation_id=conversation_id, seq__gt=after)
    if upto is not None:
        query = query.filter(seq__lte=upto)
    if role == VISITOR:
        query = query.filter(kind__in=CUSTOMER_VISIBLE_KINDS)
    messages = list(query.select_related("turn__agent").order_by("seq")[:limit])
    events = []
    for message in messages:
        event = message_event(message)
        if message.kind == MessageKind.ASSISTANT and message.turn is not None:
            event["model_label"] = model_label(message.turn.model, message.turn.agent)
        events.append(event)
    return events


def turn_model_label(turn_id: Any) -> str:
    turn = Turn.objects.select_related("agent").filter(pk=turn_id).first()
    return model_label(turn.model, turn.agent) if turn is not None else ""
