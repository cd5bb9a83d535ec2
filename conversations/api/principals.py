"""Who is calling the API, and what that caller may do with which conversation.

Every API request resolves to one `Principal`: staff (a Django session), an API key,
a visitor (a signed token naming one conversation) or anonymous. The functions here
are the API's single authorisation point: views never check scopes or ownership
themselves. Unknown conversations and conversations that belong to someone else both
raise `NotFound`, so a foreign id is never confirmed; a caller who may see the
conversation but not do the requested thing gets `PermissionDenied` (403).

What each caller may do:

- visitor: read its one conversation (customer-visible items only), post messages,
  retry or cancel its turns, ask for a person (handoff).
- API key: `read` to read, `write` to create conversations, post, retry, cancel,
  change status, hand off and hand back; `audit` adds staff-level reads (full turn
  audits, internal notes, usage and cost); `all_conversations` widens the key from
  its own integration's conversations to every conversation.
- staff: everything their Django permissions allow (`view_conversation` to read,
  `change_conversation` to write); they always see audits and notes.
- anonymous: may only create a conversation (as a visitor, receiving its token).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotAuthenticated

from conversations.access import conversation_for_staff, conversation_for_visitor
from conversations.api.models import ApiKey, Scope
from conversations.errors import NotFound, PermissionDenied
from conversations.models import Conversation


class Action(StrEnum):
    READ = "read"  # see the conversation, its messages and turn summaries
    POST = "post"  # what a customer may do: post, retry, cancel, hand off
    MANAGE = "manage"  # change status, hand back to the AI
    CREATE = "create"  # start a conversation


@dataclass(frozen=True)
class Principal:
    kind: str  # "staff" | "key" | "visitor" | "anonymous"
    user: Any = None
    key: ApiKey | None = None
    token: str = ""
    conversation_id: str | None = None  # the visitor's one conversation

    @property
    def internal(self) -> bool:
        """Staff-level reads: full turn audits, internal notes, usage and cost."""
        if self.kind == "staff":
            return True
        return self.kind == "key" and self.key is not None and self.key.has_scope(Scope.AUDIT)

    @property
    def throttle_ident(self) -> str:
        if self.kind == "key":
            return f"key:{self.key.pk}"
        if self.kind == "visitor":
            return f"visitor:{self.conversation_id}"
        if self.kind == "staff":
            return f"staff:{self.user.pk}"
        return "anonymous"


ANONYMOUS = Principal(kind="anonymous")


def principal_require(principal: Principal, action: Action) -> None:
    """Raise PermissionDenied unless the principal may perform `action` at all (on
    some conversation); which conversations is `conversation_for_principal`'s job."""
    kind = principal.kind
    if kind == "anonymous":
        if action != Action.CREATE:
            raise NotAuthenticated("Authentication credentials were not provided.")
        return
    if kind == "visitor":
        if action == Action.MANAGE:
            raise PermissionDenied("Visitors cannot change the status or hand the conversation back.")
        return
    if kind == "key":
        needed = Scope.READ if action == Action.READ else Scope.WRITE
        if not principal.key.has_scope(needed):
            raise PermissionDenied(f"This API key lacks the '{needed}' scope.", code="missing_scope")
        return
    perm = "conversations.view_conversation" if action == Action.READ else "conversations.change_conversation"
    if not principal.user.has_perm(perm):
        raise PermissionDenied("Your staff account lacks the permission for this.")


def _uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound("Conversation not found.") from None


def conversations_visible_to(principal: Principal) -> QuerySet[Conversation]:
    """The conversations the principal may list (callers have passed `principal_require`)."""
    queryset = Conversation.objects.all()
    if principal.kind == "visitor":
        return queryset.filter(pk=principal.conversation_id)
    if principal.kind == "key" and not principal.key.has_scope(Scope.ALL_CONVERSATIONS):
        return queryset.filter(api_client_link__client_id=principal.key.client_id)
    if principal.kind in ("key", "staff"):
        return queryset
    return queryset.none()


def conversation_for_api_key(key: ApiKey, conversation_id: Any) -> Conversation:
    """The conversation, if the key's integration created it or the key may see all."""
    queryset = Conversation.objects.all()
    if not key.has_scope(Scope.ALL_CONVERSATIONS):
        queryset = queryset.filter(api_client_link__client_id=key.client_id)
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
    principal_require(principal, action)
    return conversation
