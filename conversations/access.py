"""Who may open which conversation: one access function per door-facing question.

Visitor tokens are signed (Django's signing with the secret key), name exactly one
conversation, and are issued when a widget or API client creates a conversation for an
anonymous visitor. Every door (REST API, websocket consumer, tools) authorises through
these functions, so the rule is written once. An unknown id and a conversation that
belongs to someone else both raise `NotFound`: a foreign id must not be confirmed.
"""

from __future__ import annotations

from typing import Any

from django.core import signing

from conversations.errors import NotFound
from conversations.models import Conversation

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
    except (Conversation.DoesNotExist, ValueError, signing.BadSignature):
        raise NotFound("Conversation not found.") from None
    except Exception as exc:  # malformed UUIDs raise ValidationError
        if exc.__class__.__name__ == "ValidationError":
            raise NotFound("Conversation not found.") from None
        raise
