"""Who may open which conversation: one access function per door-facing question.

Visitor tokens are signed (Django's signing with the secret key), name exactly one
conversation, and are issued when a widget or API client creates a conversation for an
anonymous visitor. Every door (REST API, websocket consumer, tools) authorises through
these functions, so the rule is written once. An unknown id and a conversation that
belongs to someone else both raise `NotFound`: a foreign id must not be confirmed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError

from conversations.errors import NotFound
from conversations.models import Conversation, Turn

_SALT = "conversations.visitor-token"
VISITOR_TOKEN_MAX_AGE = 60 * 60 * 24 * 365


def visitor_token_issue(conversation: Conversation) -> str:
    return signing.dumps({"c": str(conversation.pk)}, salt=_SALT, compress=True)


def visitor_token_conversation_id(token: str) -> str | None:
    """The conversation id a valid token names, or None for a bad/expired token."""
    if not token or not isinstance(token, str) or len(token) > 500:
        return None
    try:
        data = signing.loads(token, salt=_SALT, max_age=VISITOR_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return data.get("c") if isinstance(data, dict) else None


def conversation_for_visitor(token: str, conversation_id: Any) -> Conversation:
    """The conversation `conversation_id`, if `token` grants it; NotFound otherwise."""
    granted = visitor_token_conversation_id(token)
    if granted is None or granted != str(conversation_id):
        raise NotFound("Conversation not found.")
    conversation = Conversation.objects.select_related("agent").filter(pk=granted).first()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


def conversation_for_staff(user: Any, conversation_id: Any) -> Conversation:
    """Staff with view permission see every conversation."""
    if not (user and user.is_active and user.is_staff and user.has_perm("conversations.view_conversation")):
        raise NotFound("Conversation not found.")
    try:
        return Conversation.objects.select_related("agent").get(pk=conversation_id)
    except (Conversation.DoesNotExist, ValueError, signing.BadSignature, ValidationError):
        # ValidationError: a malformed UUID.
        raise NotFound("Conversation not found.") from None


def turn_of_conversation(conversation_id: Any, turn_id: Any, *, related: Sequence[str] = ()) -> Turn:
    """The turn `turn_id` of the conversation `conversation_id` (which the caller has
    already authorised), with `related` joined; NotFound for a malformed id, an
    unknown turn, or a turn of another conversation (a foreign id is not confirmed)."""
    try:
        pk = uuid.UUID(str(turn_id))
    except ValueError:
        raise NotFound("Turn not found.") from None
    turn = Turn.objects.select_related(*related).filter(conversation_id=conversation_id, pk=pk).first()
    if turn is None:
        raise NotFound("Turn not found.")
    return turn
