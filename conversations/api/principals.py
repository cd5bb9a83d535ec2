"""Who is calling the API, and which conversations that caller may reach.

Every API request resolves to one `Principal` (`conversations.authorization`): staff
(a Django session), an API key, a visitor (a signed token naming one conversation) or
anonymous. What a principal may do is decided by `conversations.authorization`, the
same rules the websocket and the console follow; this module adds what only the API
needs: anonymous callers get 401 rather than 403, and a key's listing is limited to
its integration's conversations. Unknown conversations and conversations that belong
to someone else both raise `NotFound`, so a foreign id is never confirmed; a caller
who may see the conversation but not do the requested thing gets `PermissionDenied`
(403). The services check again when the view calls them, with the same answer.

What each caller may do (docs/security.md has the full table):

- visitor: read its one conversation (the customer's view of it), post messages,
  retry or cancel its turns, ask for a person (handoff).
- API key: `read` to read, `write` to create conversations, post, retry, cancel,
  change status, hand off and hand back; `audit` adds staff-level reads (full turn
  audits, internal notes, usage and cost); `all_conversations` widens the key from
  its own integration's conversations to every conversation.
- staff: what their console permissions allow (`view_conversation` to read; the
  Support agent's permissions to retry, cancel, hand off or back and resolve;
  `change_conversation`, held by superusers, to post as the customer or create).
- anonymous: may only create a conversation (as a visitor, receiving its token).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotAuthenticated

from conversations.access import conversation_for_staff, conversation_for_visitor
from conversations.api.models import ApiKey, Scope
from conversations.authorization import ANONYMOUS, Action, Principal, authorize, require
from conversations.errors import NotFound
from conversations.models import Conversation

__all__ = [
    "ANONYMOUS", "Action", "Principal", "conversation_for_api_key", "conversation_for_principal",
    "conversations_visible_to", "principal_require",
]


def principal_require(principal: Principal, action: Action) -> None:
    """Raise unless the principal may perform `action` at all (on some conversation);
    which conversations is `conversation_for_principal`'s job. Anonymous callers get
    NotAuthenticated (401) for anything but creating a conversation."""
    if principal.kind == "anonymous" and action != Action.CREATE:
        raise NotAuthenticated("Authentication credentials were not provided.")
    require(principal, action)


def _uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound("Conversation not found.") from None


def conversations_visible_to(principal: Principal) -> QuerySet[Conversation]:
    """The conversations the principal may list (callers have passed `principal_require`)."""
    queryset = Conversation.objects.all()
    if principal.kind == "visitor":
        return queryset.filter(pk=principal.conversation_id) if principal.conversation_id else queryset.none()
    if principal.kind == "key" and not principal.key.has_scope(Scope.ALL_CONVERSATIONS):
        return queryset.filter(api_client_link__client_id=principal.key.client_id)
    if principal.kind in ("key", "staff"):
        return queryset
    return queryset.none()


def conversation_for_api_key(key: ApiKey, conversation_id: Any) -> Conversation:
    """The conversation, if the key's integration created it or the key may see all."""
    queryset = Conversation.objects.all()
    if not key.has_scope(Scope.ALL_CONVERSATIONS):
        # select_related: the access layer's ownership check then reads no more rows.
        queryset = queryset.filter(api_client_link__client_id=key.client_id).select_related("api_client_link")
    conversation = queryset.filter(pk=_uuid(conversation_id)).first()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


def conversation_for_principal(principal: Principal, conversation_id: Any, action: Action) -> Conversation:
    """The conversation the principal may perform `action` on; NotFound if it may not
    see it (checked first, so a foreign id always answers 404), PermissionDenied if it
    may see it but not do this."""
    if principal.kind == "anonymous":
        principal_require(principal, action)
    if principal.kind == "visitor":
        conversation = conversation_for_visitor(principal.token, conversation_id)
    elif principal.kind == "key":
        conversation = conversation_for_api_key(principal.key, conversation_id)
    else:
        conversation = conversation_for_staff(principal.user, conversation_id)
    authorize(principal, action, conversation)
    return conversation
