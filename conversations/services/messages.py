"""Posting into a conversation: customer messages (which queue a turn), staff replies
and internal notes. The only way a turn is started by a new message, for every door.

Each takes the acting principal as `actor` (a `Principal`, a staff user, or None for
the platform itself) and refuses what it may not do (`conversations.authorization`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from conversations.agent.events import conversation_updated_event, message_event
from conversations.authorization import Action, Actor, authorize
from conversations.conf import platform_setting
from conversations.errors import Conflict, InvalidInput, PayloadTooLarge
from conversations.models import Conversation, FactSource, Message, StaffAction, Turn
from conversations.models.conversation import Status
from conversations.models.message import MessageKind
from conversations.models.staff_profile import staff_identity
from conversations.services.engine_port import publish_on_commit
from conversations.services.facts import MAX_FACT_CHARS, fact_add
from conversations.services.items import ITEM_COUNTER_FIELDS, item_append
from conversations.services.locks import conversation_lock
from conversations.services.prepared import row_save
from conversations.services.storable import clean_metadata, text_problem
from conversations.services.turns import turn_queue

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class PostResult:
    message: Message
    turn: Turn | None
    created: bool


def clean_message_text(text: Any) -> str:
    """Validate customer or staff text: a non-empty string within the configured size."""
    if not isinstance(text, str):
        raise InvalidInput("Message text must be a string.", fields={"text": "must be a string"})
    limit = platform_setting("MAX_MESSAGE_CHARS")
    if len(text) > limit:
        raise PayloadTooLarge(
            f"Message is {len(text)} characters; the limit is {limit}.",
            fields={"text": f"at most {limit} characters"},
        )
    if not text.strip():
        raise InvalidInput("Message text is empty.", fields={"text": "may not be blank"})
    problem = text_problem(text)
    if problem:
        raise InvalidInput(f"Message text {problem}.", fields={"text": problem})
    return text


def clean_client_id(client_id: Any) -> str:
    if client_id in (None, ""):
        return ""
    if not isinstance(client_id, str) or len(client_id) > 100:
        raise InvalidInput(
            "client_id must be a string of at most 100 characters.",
            fields={"client_id": "at most 100 characters"},
        )
    return client_id


def _existing_post(conversation: Conversation, client_id: str, text: str) -> PostResult | None:
    if not client_id:
        return None
    message = Message.objects.filter(conversation=conversation, client_id=client_id).first()
    if message is None:
        return None
    if message.text != text:
        raise Conflict(
            "This client_id was already used for a different message.",
            code="client_id_reused",
            fields={"client_id": "already used with different text"},
        )
    turn = message.turns.order_by("-attempt").first()
    return PostResult(message=message, turn=turn, created=False)


def message_post(
    *, conversation: Conversation, text: Any, client_id: Any = "", metadata: dict | None = None,
    actor: Actor = None,
) -> PostResult:
    """Store a customer message and queue its turn, in one transaction.

    Idempotent on `client_id`: posting it again returns the first message and its turn;
    reusing it with different text is a Conflict. When the AI is paused (a person has
    taken over) the message is stored and no turn is queued. `conversation` is updated
    in place (seq counter, status).
    """
    authorize(actor, Action.POST, conversation)
    text = clean_message_text(text)
    client_id = clean_client_id(client_id)
    metadata = clean_metadata(metadata)
    try:
        with transaction.atomic():
            locked = conversation_lock(conversation.pk)
            # No look-up of `client_id` first: the unique constraint on (conversation,
            # client_id) refuses a repeat, which is rare, and that is answered below
            # from the first post. A new message costs no extra query.
            message = item_append(
                conversation=locked, locked=True, save=False,
                kind=MessageKind.USER, text=text, client_id=client_id, metadata=metadata,
            )
            publish_on_commit(locked.pk, message_event(message))
            fields = list(ITEM_COUNTER_FIELDS)
            reopened = locked.status == Status.RESOLVED
            if reopened:
                locked.status = Status.OPEN
                fields.append("status")
            turn = None
            if not locked.ai_paused:
                turn = turn_queue(conversation=locked, user_message=message, attempt=1)
                fields.append("turn_count")
            row_save(locked, fields)
            if reopened:
                publish_on_commit(locked.pk, conversation_updated_event(locked))
    except IntegrityError:
        # This client_id was posted before (a client retrying), or a concurrent post
        # with it won the race: nothing of this attempt was written; return the first.
        existing = _existing_post(conversation, client_id, text)
        if existing:
            return existing
        raise
    for name in (*ITEM_COUNTER_FIELDS, "status", "turn_count"):
        setattr(conversation, name, getattr(locked, name))
    return PostResult(message=message, turn=turn, created=True)


def staff_reply_post(*, conversation: Conversation, actor: Actor, text: Any, client_id: Any = "") -> Message:
    """A person replies to the customer. Pauses the AI (a reply is a takeover) so the
    model does not answer over them; they hand back explicitly."""
    actor = authorize(actor, Action.REPLY, conversation).staff_user
    text = clean_message_text(text)
    client_id = clean_client_id(client_id)
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        if client_id:
            prior = Message.objects.filter(conversation=locked, client_id=client_id).first()
            if prior:
                return prior
        message = item_append(
            conversation=locked,
            locked=True,
            kind=MessageKind.STAFF,
            text=text,
            client_id=client_id,
            author=actor,
            metadata=_author(actor, avatar=True),
        )
        changed = not locked.ai_paused or locked.status == Status.WAITING_ON_STAFF
        locked.ai_paused = True
        if locked.status == Status.WAITING_ON_STAFF:
            locked.status = Status.OPEN
        locked.save(update_fields=["ai_paused", "status", "updated_at"])
        StaffAction.objects.create(
            actor=actor, conversation=locked, action="reply", detail={"seq": message.seq}
        )
        publish_on_commit(locked.pk, message_event(message))
        if changed:
            publish_on_commit(locked.pk, conversation_updated_event(locked))
    conversation.refresh_from_db()
    return message


def note_add(*, conversation: Conversation, actor: Actor, text: Any, as_fact: bool = False) -> Message:
    """An internal note: stored in the transcript for staff, never sent to the customer
    or the model (the history selector and customer-facing reads exclude notes). With
    `as_fact`, its text is also kept as a customer fact, which every turn does send
    (`facts.fact_add`, which needs `Action.FACTS` too)."""
    if as_fact:
        authorize(actor, Action.FACTS, conversation)
    actor = authorize(actor, Action.NOTE, conversation).staff_user
    text = clean_message_text(text)
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        message = item_append(
            conversation=locked,
            locked=True,
            kind=MessageKind.NOTE,
            text=text,
            author=actor,
            metadata=_author(actor),
        )
        StaffAction.objects.create(
            actor=actor, conversation=locked, action="note", detail={"seq": message.seq}
        )
        if as_fact:
            fact_add(conversation=locked, actor=actor, text=text[:MAX_FACT_CHARS], source=FactSource.NOTE,
                     message=message)
    return message


def _author(actor: User | None, *, avatar: bool = False) -> dict[str, str]:
    """The author as customers see them (`StaffProfile`), stored with the item."""
    who = staff_identity(actor)
    shown = {"author_name": who["name"]}
    if avatar and who["avatar_url"]:
        shown["author_avatar_url"] = who["avatar_url"]
    return shown
