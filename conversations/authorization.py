"""Who may do what to a conversation: the acting principal, the actions, and the one check.

Authorisation is decided here once per action, and every door gets the same answer:
the services that act on a conversation (`message_post`, `staff_reply_post`,
`note_add`, `fact_add`, `fact_edit`, `fact_delete`, `turn_retry`, `turn_cancel`, `conversation_handoff`, `conversation_take_over`,
`conversation_hand_back`, `conversation_set_status`, `rating_add`, the console's
`replay_start`) take the acting principal as `actor` and call `authorize` before they write. The doors
(REST API, widget websocket, console) only map the refusal to their own answer: HTTP
404/403, a websocket `error` event, an admin 403 page.

`actor` may be a `Principal`, a Django user (a staff member acting in the console:
treated as `Principal(kind="staff")`), or None: the platform itself (the engine, its
tools, budgets, imports and management commands), which is never refused.

Two refusals, in this order:
- `NotFound` when the principal may not see the conversation at all, so a foreign id is
  never confirmed (a visitor's token names one conversation; an API key sees its own
  integration's, or all with `all_conversations`; staff need `view_conversation`);
- `PermissionDenied` when it may see the conversation but not do this.

The staff permissions are the console's (`conversations/permissions.py`);
docs/security.md has the table of what each role may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeAlias

from django.core.exceptions import ObjectDoesNotExist

from conversations.errors import NotFound, PermissionDenied
from conversations.models.conversation import Channel
from conversations.permissions import perm

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser, User

    from conversations.models import Conversation, Turn


class Action(StrEnum):
    READ = "read"  # see the conversation, its messages and turns
    CREATE = "create"  # start a conversation
    POST = "post"  # post a customer message (speak as the customer)
    RETRY = "retry"  # queue a new attempt of a failed or cancelled turn
    CANCEL = "cancel"  # stop a queued or running turn
    HANDOFF = "handoff"  # ask for a person: waiting on staff, AI paused
    REPLY = "reply"  # reply to the customer as staff
    NOTE = "note"  # add an internal note
    TAKE_OVER = "take_over"  # pause the AI to answer personally
    HAND_BACK = "hand_back"  # give the conversation back to the AI
    SET_STATUS = "set_status"  # resolve or reopen
    REPLAY = "replay"  # re-run a recorded turn against another agent, model or instructions
    EXPORT = "export"  # download the full transcript (notes and tool output included)
    TRY_AGENT = "try_agent"  # talk to an agent in the console's try-it panel
    FACTS = "facts"  # add, edit or delete the customer facts sent with every turn
    RATE = "rate"  # rate a resolved conversation (CSAT): its customer only


@dataclass(frozen=True)
class Principal:
    """Who is acting. `kind` is "staff" (a Django user), "key" (an API key), "visitor"
    (a signed token naming one conversation), "anonymous" or "system"."""

    kind: str
    user: Any = None
    key: Any = None  # conversations.api.models.ApiKey
    token: str = ""
    conversation_id: str | None = None  # the visitor's one conversation

    @property
    def internal(self) -> bool:
        """Staff-level reads: full turn audits, internal notes, usage and cost."""
        if self.kind in ("staff", "system"):
            return True
        return self.kind == "key" and self.key is not None and self.key.has_scope("audit")

    @property
    def customer_view(self) -> bool:
        """Sees the conversation as its customer does (`conversations.customer_view`)."""
        return self.kind == "visitor"

    @property
    def staff_user(self) -> User | None:
        """The Django user to record as the actor of a StaffAction, or None."""
        return self.user if self.kind == "staff" else None

    @property
    def throttle_ident(self) -> str:
        if self.kind == "key":
            return f"key:{self.key.pk}"
        if self.kind == "visitor":
            return f"visitor:{self.conversation_id}"
        if self.kind == "staff":
            return f"staff:{self.user.pk}"
        return self.kind


ANONYMOUS = Principal(kind="anonymous")
SYSTEM = Principal(kind="system")


# A service's `actor` argument: a principal, a Django user (a request's, so possibly
# anonymous), or None for the platform itself.
Actor: TypeAlias = "Principal | AbstractBaseUser | AnonymousUser | None"


def principal_of(actor: Actor) -> Principal:
    """The principal behind a service's `actor` argument (see the module docstring)."""
    if isinstance(actor, Principal):
        return actor
    if actor is None:
        return SYSTEM
    if not getattr(actor, "is_authenticated", False):
        return ANONYMOUS
    return Principal(kind="staff", user=actor)


# What each role may do. Staff: the Django permission each action needs.
_STAFF_PERMISSION: dict[Action, str] = {
    Action.READ: "conversations.view_conversation",
    Action.EXPORT: "conversations.view_conversation",
    # Speaking as the customer is not a support role's job: only accounts granted
    # change_conversation (superusers) may, except in their own try-it chats.
    Action.POST: "conversations.change_conversation",
    Action.CREATE: "conversations.change_conversation",
    Action.REPLY: perm("reply_as_staff"),
    Action.NOTE: perm("add_note"),
    # Facts are notes the model reads: whoever may write internal notes may keep them.
    Action.FACTS: perm("add_note"),
    Action.RETRY: perm("retry_turn"),
    Action.CANCEL: perm("take_over"),
    Action.HANDOFF: perm("take_over"),
    Action.TAKE_OVER: perm("take_over"),
    Action.HAND_BACK: perm("take_over"),
    Action.SET_STATUS: perm("set_status"),
    Action.REPLAY: perm("replay_turn"),
    Action.TRY_AGENT: perm("try_agent"),
}
# Visitors: what a customer does in their own conversation.
_VISITOR_ACTIONS = frozenset({
    Action.READ, Action.CREATE, Action.POST, Action.RETRY, Action.CANCEL, Action.HANDOFF, Action.RATE,
})
# API keys: the scope each action needs; actions missing here are not for keys.
_KEY_SCOPE: dict[Action, str] = {
    Action.READ: "read",
    **{action: "write" for action in (
        Action.CREATE, Action.POST, Action.RETRY, Action.CANCEL, Action.HANDOFF,
        Action.HAND_BACK, Action.SET_STATUS,
        # A key that may post customer messages rates on the customer's behalf too.
        Action.RATE,
    )},
}
_REFUSALS: dict[Action, str] = {
    Action.READ: "You may not read this conversation.",
    Action.CREATE: "You may not start conversations.",
    Action.POST: "You may not post customer messages here.",
    Action.RETRY: "You may not retry turns.",
    Action.CANCEL: "You may not cancel turns.",
    Action.HANDOFF: "You may not hand this conversation off.",
    Action.REPLY: "You may not reply to customers as staff.",
    Action.NOTE: "You may not add internal notes.",
    Action.TAKE_OVER: "You may not take over conversations.",
    Action.HAND_BACK: "You may not hand conversations back to the AI.",
    Action.SET_STATUS: "You may not resolve or reopen conversations.",
    Action.REPLAY: "You may not replay turns.",
    Action.EXPORT: "You may not export transcripts.",
    Action.TRY_AGENT: "You may not use the try-it panel.",
    Action.FACTS: "You may not edit customer facts.",
    Action.RATE: "Only the customer rates a conversation.",
}


def playground_owner_id(user: Any) -> str:
    """The customer id of a staff member's try-it chats."""
    return f"staff-{user.pk}"


def _is_staff(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.is_staff)


def _own_playground(user: Any, conversation: Conversation | None) -> bool:
    return (
        conversation is not None and conversation.channel == Channel.PLAYGROUND
        and conversation.customer_id == playground_owner_id(user)
    )


def allowed(principal: Principal, action: Action, conversation: Conversation | None = None) -> bool:
    """May the principal do `action` (on `conversation`, when given)? Visibility of the
    conversation is `may_see`'s question; this is the role's."""
    kind = principal.kind
    if kind == "system":
        return True
    if kind == "visitor":
        return action in _VISITOR_ACTIONS
    if kind == "anonymous":
        return action == Action.CREATE
    if kind == "key":
        scope = _KEY_SCOPE.get(action)
        return scope is not None and principal.key is not None and principal.key.has_scope(scope)
    if kind == "staff":
        user = principal.user
        if not _is_staff(user):
            return False
        if action == Action.POST and _own_playground(user, conversation):
            return user.has_perm(_STAFF_PERMISSION[Action.TRY_AGENT])
        permission = _STAFF_PERMISSION.get(action)  # none for RATE: staff never rate
        return permission is not None and user.has_perm(permission)
    return False


def may_see(principal: Principal, conversation: Conversation) -> bool:
    """May the principal see this conversation at all?"""
    kind = principal.kind
    if kind == "system":
        return True
    if kind == "visitor":
        return principal.conversation_id is not None and principal.conversation_id == str(conversation.pk)
    if kind == "key":
        key = principal.key
        if key is None:
            return False
        if key.has_scope("all_conversations"):
            return True
        # The reverse one-to-one is cached on the instance (the API reads it with
        # select_related), so the door's check and the service's cost one query at most.
        try:
            link = conversation.api_client_link
        except ObjectDoesNotExist:
            return False
        return link.client_id == key.client_id
    if kind == "staff":
        return _is_staff(principal.user) and principal.user.has_perm(_STAFF_PERMISSION[Action.READ])
    return False


def authorize_turn(actor: Actor, action: Action, turn: Turn) -> Principal:
    """`authorize` on the turn's conversation (read only when a principal must be checked)."""
    if actor is None:
        return SYSTEM
    return authorize(actor, action, turn.conversation)


def authorize(actor: Actor, action: Action, conversation: Conversation | None = None) -> Principal:
    """Return the acting principal if it may do `action` (on `conversation`); raise
    NotFound if it may not see the conversation, PermissionDenied if it may see it but
    not do this."""
    principal = principal_of(actor)
    if principal.kind == "system":
        return principal
    if conversation is not None and not may_see(principal, conversation):
        raise NotFound("Conversation not found.")
    if not allowed(principal, action, conversation):
        raise _refusal(principal, action)
    return principal


def _refusal(principal: Principal, action: Action) -> PermissionDenied:
    scope = _KEY_SCOPE.get(action)
    if principal.kind == "key" and scope is not None:
        return PermissionDenied(f"This API key lacks the '{scope}' scope.", code="missing_scope")
    return PermissionDenied(_REFUSALS[action], code="forbidden")


def require(actor: Actor, action: Action) -> Principal:
    """`authorize` with no conversation yet: may the principal do `action` at all?"""
    principal = principal_of(actor)
    if principal.kind != "system" and not allowed(principal, action):
        raise _refusal(principal, action)
    return principal
